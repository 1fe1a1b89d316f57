//! Parity with PyTorch for the optimizers, gradient clipping and lr schedules:
//! test/fixtures/parity/optim.json (scripts/make_layer_fixtures.py: the MLP
//! Linear(6,5) ReLU Linear(5,3) with cross-entropy on one batch of 8, float32 init,
//! float64 PyTorch math; each run repeats zero_grad/loss/backward/[clip]/step/
//! [sched.step]). ferronet, in f32, must match the loss before every step, the lr and
//! gradient norm of every step and the parameters after the run to 1e-5 relative.

use ferronet_core::optim::{AdamConfig, AdamWConfig, OptimizerConfig, RmspropConfig, ScheduleConfig, SgdConfig};
use ferronet_core::{Labels, LossConfig, Model, Targets, Trainer, TrainerConfig};
use serde_json::Value;

const REL_TOL: f64 = 1e-5;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test/fixtures/parity/optim.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read fixture")).expect("parse fixture")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn optimizer_config(o: &Value) -> OptimizerConfig {
    let num = |k: &str| o[k].as_f64().unwrap_or_else(|| panic!("optimizer.{k}")) as f32;
    let beta = |i: usize| o["betas"][i].as_f64().unwrap() as f32;
    match o["type"].as_str().unwrap() {
        "adam" => OptimizerConfig::Adam(AdamConfig {
            lr: num("lr"),
            beta1: beta(0),
            beta2: beta(1),
            eps: num("eps"),
            weight_decay: num("weightDecay"),
        }),
        "adamw" => OptimizerConfig::AdamW(AdamWConfig {
            lr: num("lr"),
            beta1: beta(0),
            beta2: beta(1),
            eps: num("eps"),
            weight_decay: num("weightDecay"),
        }),
        "rmsprop" => OptimizerConfig::Rmsprop(RmspropConfig {
            lr: num("lr"),
            alpha: num("alpha"),
            eps: num("eps"),
            weight_decay: num("weightDecay"),
            momentum: num("momentum"),
            centered: o["centered"].as_bool().unwrap(),
        }),
        "sgd" => OptimizerConfig::Sgd(SgdConfig {
            lr: num("lr"),
            momentum: num("momentum"),
            dampening: num("dampening"),
            weight_decay: num("weightDecay"),
            nesterov: o["nesterov"].as_bool().unwrap(),
        }),
        t => panic!("unknown optimizer {t}"),
    }
}

fn schedule_config(s: &Value) -> Option<ScheduleConfig> {
    if s.is_null() {
        return None;
    }
    let num = |k: &str| s[k].as_f64().unwrap_or_else(|| panic!("schedule.{k}"));
    let or = |k: &str, d: f64| s.get(k).and_then(Value::as_f64).unwrap_or(d);
    let int = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("schedule.{k}"));
    Some(match s["type"].as_str().unwrap() {
        "step" => ScheduleConfig::Step { step_size: int("stepSize"), gamma: num("gamma") },
        "exponential" => ScheduleConfig::Exponential { gamma: num("gamma") },
        "cosine" => ScheduleConfig::Cosine {
            total_steps: int("totalSteps"),
            warmup_steps: s.get("warmupSteps").and_then(Value::as_u64).unwrap_or(0),
            min_lr: or("minLr", 0.0),
        },
        "one_cycle" => ScheduleConfig::OneCycle {
            max_lr: num("maxLr"),
            total_steps: int("totalSteps"),
            pct_start: or("pctStart", 0.3),
            div_factor: or("divFactor", 25.0),
            final_div_factor: or("finalDivFactor", 1e4),
        },
        t => panic!("unknown schedule {t}"),
    })
}

fn close(what: &str, got: f64, want: f64, floor: f64) {
    let err = (got - want).abs();
    assert!(err <= REL_TOL * want.abs().max(floor), "{what}: ferronet {got} vs PyTorch {want} (err {err:e})");
}

#[test]
fn optimizers_clipping_and_schedules_match_pytorch() {
    let f = fixture();
    assert_eq!(f["loss"]["type"], "cross_entropy");
    let spec = serde_json::to_string(&f["spec"]).unwrap();
    let x = floats(&f["input"]["data"]);
    let y: Vec<u32> = f["labels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let runs = f["runs"].as_array().unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for run in runs {
        let name = run["name"].as_str().unwrap();
        kinds.insert(run["optimizer"]["type"].as_str().unwrap().to_string());
        if let Some(s) = run["schedule"].get("type") {
            kinds.insert(s.as_str().unwrap().to_string());
        }
        if !run["clipNorm"].is_null() {
            kinds.insert("clip".into());
        }
        let mut model = Model::from_json(&spec, 0).unwrap();
        for (pname, p) in run["params"].as_object().unwrap() {
            model.set_param_by_name(pname, &floats(&p["data"])).unwrap();
        }
        let mut trainer = Trainer::with_config(TrainerConfig {
            optimizer: optimizer_config(&run["optimizer"]),
            loss: LossConfig::default(),
            group: None,
            seed: 0,
            clip_norm: run["clipNorm"].as_f64().map(|c| c as f32),
            schedule: schedule_config(&run["schedule"]),
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let steps = run["steps"].as_u64().unwrap() as usize;
        let (losses, lrs, norms) = (f64s(&run["losses"]), f64s(&run["lrs"]), f64s(&run["gradNorms"]));
        assert_eq!((losses.len(), lrs.len(), norms.len()), (steps, steps, steps), "{name}");
        for t in 0..steps {
            let loss = trainer.train_batch(&mut model, &x, Targets::Classes(Labels::U32(&y))).unwrap();
            close(&format!("{name}: loss before step {}", t + 1), loss, losses[t], 1e-6);
            close(&format!("{name}: lr of step {}", t + 1), trainer.lr(), lrs[t], 1e-12);
            close(&format!("{name}: gradient norm of step {}", t + 1), trainer.grad_norm(), norms[t], 1e-6);
        }
        let after = model.params();
        let want_after = run["params_after"].as_object().unwrap();
        assert_eq!(after.len(), want_after.len(), "{name}: parameter count");
        for p in &after {
            let want = floats(&want_after[&p.name]["data"]);
            let start = floats(&run["params"][&p.name]["data"]);
            assert_eq!(p.data.len(), want.len(), "{name}: {}", p.name);
            // Entries near 0 get a floor of 1e-2 of the tensor's largest (as tests/parity.rs),
            // and an entry is compared relative to the larger of its start and its total
            // move: RMSprop's first steps move every weight by ~lr·√(1/(1−α)) = 0.1 whatever
            // its gradient, so a weight ending near 0 is a difference of ~0.1-sized f32
            // values (rounding ~1e-8 each).
            let scale = want.iter().fold(0.0f64, |m, &v| m.max(v.abs() as f64));
            for (i, (&g, &w)) in p.data.iter().zip(&want).enumerate() {
                let (w0, w) = (start[i] as f64, w as f64);
                let floor = (1e-2 * scale).max(w0.abs()).max((w - w0).abs());
                close(&format!("{name}: {}[{i}] after {steps} steps", p.name), g as f64, w, floor);
            }
        }
    }
    for k in ["adamw", "rmsprop", "adam", "sgd", "clip", "step", "exponential", "cosine", "one_cycle"] {
        assert!(kinds.contains(k), "fixture has no {k} run");
    }
}
