//! AdamW and RMSprop against PyTorch's update rules transcribed into Python (f64,
//! from the same f32 start and gradients): 5 steps on 37 elements (AVX-512 blocks
//! and a tail).

use super::*;

const N: usize = 37;
const T: usize = 5;

fn start() -> Vec<f32> {
    (0..N).map(|i| ((i as f64) + 1.0).sin() as f32).collect()
}

fn grad(t: usize) -> Vec<f32> {
    (0..N)
        .map(|i| ((0.7 * i as f64 + t as f64).cos() * if i % 3 != 0 { 0.5 } else { 2.0 }) as f32)
        .collect()
}

fn run(config: OptimizerConfig) -> Vec<f32> {
    let mut opt = config.build().unwrap();
    let mut p = start();
    for t in 0..T {
        let g = grad(t);
        let refs = [TensorRef { id: 0, param: p.as_mut_ptr(), grad: g.as_ptr(), len: N }];
        unsafe { opt.step(&refs) };
    }
    p
}

fn check(what: &str, got: &[f32], want: &[f64]) {
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w).abs();
        assert!(err <= 2e-5 * w.abs().max(0.1), "{what}[{i}]: {g} vs PyTorch rule {w} (err {err:e})");
    }
}

#[test]
fn adamw_matches_torch_rule() {
    let got = run(OptimizerConfig::AdamW(AdamWConfig { lr: 0.01, weight_decay: 0.1, ..Default::default() }));
    check("adamw", &got, &ADAMW);
}

#[test]
fn adamw_without_decay_is_adam() {
    let a = run(OptimizerConfig::AdamW(AdamWConfig { weight_decay: 0.0, ..Default::default() }));
    let b = run(OptimizerConfig::Adam(AdamConfig::default()));
    assert_eq!(a, b);
    assert_eq!(AdamWConfig::default().weight_decay, 0.01);
}

#[test]
fn rmsprop_matches_torch_rule() {
    let base = RmspropConfig::default();
    check("default", &run(OptimizerConfig::Rmsprop(base)), &RMS_DEFAULT);
    check("centered", &run(OptimizerConfig::Rmsprop(RmspropConfig { centered: true, ..base })), &RMS_CENTERED);
    check("momentum", &run(OptimizerConfig::Rmsprop(RmspropConfig { momentum: 0.9, ..base })), &RMS_MOMENTUM);
    let all = RmspropConfig { lr: 0.005, alpha: 0.9, eps: 1e-6, weight_decay: 0.1, momentum: 0.8, centered: true };
    check("all", &run(OptimizerConfig::Rmsprop(all)), &RMS_ALL);
}

#[test]
fn set_lr_changes_the_next_step() {
    for config in [
        OptimizerConfig::Sgd(SgdConfig::default()),
        OptimizerConfig::Adam(AdamConfig::default()),
        OptimizerConfig::AdamW(AdamWConfig::default()),
        OptimizerConfig::Rmsprop(RmspropConfig::default()),
    ] {
        let mut opt = config.build().unwrap();
        opt.set_lr(0.125);
        assert_eq!(opt.lr(), 0.125);
    }
    // AdamW's decay follows the lr it steps with.
    let mut a = OptimizerConfig::AdamW(AdamWConfig { lr: 0.5, weight_decay: 0.5, ..Default::default() }).build().unwrap();
    a.set_lr(0.01);
    let mut p = vec![1.0f32];
    let g = [0.0f32];
    unsafe { a.step(&[TensorRef { id: 0, param: p.as_mut_ptr(), grad: g.as_ptr(), len: 1 }]) };
    assert_eq!(p[0], 1.0 - 0.01 * 0.5);
}

#[test]
fn rmsprop_validation_names_the_field() {
    let e = RmspropConfig { alpha: 1.5, ..Default::default() }.validate().unwrap_err().to_string();
    assert!(e.contains("optimizer.alpha"), "{e}");
}

const ADAMW: [f64; 37] = [0.8166828597207652, 0.9004992635519599, 0.1547982878365052, -0.7173937031203981, -0.9274162914344428, -0.2650645430391594, 0.6473354273455194, 0.94736792708454, 0.3782912245588761, -0.561565916740948, -0.9987886968642602, -0.5192545623809203, 0.4535648673510361, 1.0121101894058915, 0.6596078931090211, -0.2933298647950908, -0.9936585860368253, -0.778789452842782, 0.12920221264522508, 0.9050778158375372, 0.8473660830006845, 0.026544423166524278, -0.8158314300355278, -0.8888896082235315, -0.13903885804492908, 0.7216988659867057, 0.920278153188666, 0.2499618955376417, -0.6631534121447579, -0.9679852111187824, -0.3668177483393421, 0.5745592666006656, 1.0066937275839432, 0.5186175558178969, -0.4630874433153687, -1.017928173111173, -0.6595812086318225];
const RMS_DEFAULT: [f64; 37] = [0.8311853933007116, 0.9614151039987722, 0.19669232732448194, -0.6110393999867465, -0.910611051577768, -0.30307173911988294, 0.5841331098552205, 0.7869388677942661, 0.3197933595563815, -0.5525836028146403, -0.9465474994057965, -0.48295017024246223, 0.5632521098013231, 1.0369126067552248, 0.6251646930824114, -0.36098271616221816, -1.1610020414691469, -0.8409951019212468, 0.14302408318333754, 0.9677002536262915, 0.8882494642614671, 0.13157150419358266, -0.80190896001222, -0.932159818927822, -0.20555268878993815, 0.5657756928562663, 0.8686689459965634, 0.265748335185386, -0.6075814395574686, -0.9385417742109601, -0.26626101596412133, 0.5937586480618507, 0.971880361091948, 0.45586818783880156, -0.6221386557143525, -1.0772012652094722, -0.6470135020274347];
const RMS_CENTERED: [f64; 37] = [0.8304084159243286, 0.9611674054838564, 0.19719098463660192, -0.6093777698755086, -0.9095933575090237, -0.30252722040601715, 0.5841410905099103, 0.7851212513723527, 0.31845728881077406, -0.5533504858608506, -0.9467816730478582, -0.482424242000216, 0.5649005111531517, 1.0379163449265358, 0.625695995062126, -0.36099015101037435, -1.1628196080313533, -0.8423147301996987, 0.14226723837862612, 0.9674791944208785, 0.8888018087035023, 0.133206375421132, -0.8009189500438352, -0.931642013335342, -0.20557675281898663, 0.5639592568002498, 0.8673657624460983, 0.26500149315271887, -0.6077898195965011, -0.9379639844850146, -0.2646399571309331, 0.5947351614528129, 0.9723843969625355, 0.4558262235416285, -0.6239529321784925, -1.0784880155349579, -0.6477503553320157];
const RMS_MOMENTUM: [f64; 37] = [0.5219573403829414, 0.8754645510677845, 0.28183618826803464, -0.03125749394774058, -0.5089904818720061, -0.0993450640875844, 0.5421878803352109, 0.12960849287465143, -0.17031457004703257, -0.8571121954715463, -1.0261847580730534, -0.3983931057698216, 1.1389304612563684, 1.4340944872084616, 0.8235730449974593, -0.407568908264347, -1.8149334099829124, -1.3268128767886345, -0.1567866126066575, 0.894407525867524, 0.9720083461443718, 0.7031318098810756, -0.40917506606757287, -0.7391135858812058, -0.2565505628085465, -0.08469340656807275, 0.38714757791389176, -0.029325287196979577, -0.6745042846554861, -0.8557837620438833, 0.30116774245089156, 0.9820350011402036, 1.1595192138629635, 0.4006988192561311, -1.269086363951712, -1.5544199430121195, -0.9373300516206444];
const RMS_ALL: [f64; 37] = [0.7976805279961611, 0.8888170537807847, 0.164260855649188, -0.6516054476393869, -0.8857975875191662, -0.2544992633071833, 0.6320653825560691, 0.8598596111033596, 0.326708825824781, -0.5807446072097788, -0.9726832694339986, -0.5066968538661879, 0.5216427377686599, 1.033224371927697, 0.654403623224241, -0.30830883053115865, -1.0734821153603447, -0.8207662655535044, 0.1110188510429123, 0.8941178291802014, 0.8480827950331781, 0.09258641475640575, -0.7763500381508149, -0.8698210038016124, -0.15422258021390087, 0.6361298457390292, 0.8669311859806266, 0.23246162260915504, -0.642193465578372, -0.8447386508465458, -0.3027136930452151, 0.5992549478311149, 0.9936618606451892, 0.5032854419367595, -0.5444879922515238, -1.0557110481248835, -0.676868327948097];

#[test]
fn the_finite_check_finds_one_nan_or_infinity_anywhere() {
    // Two tensors, one spanning several parallel chunks and a ragged tail.
    let mut params = [vec![0.0f32; 3 * clip_chunk() + 37], vec![0.0f32; 5]];
    let mut grads = [vec![0.5f32; params[0].len()], vec![-2.0f32; 5]];
    let refs = |params: &mut [Vec<f32>; 2], grads: &[Vec<f32>; 2]| -> Vec<TensorRef> {
        (0..2).map(|i| TensorRef { id: 10 + i, param: params[i].as_mut_ptr(), grad: grads[i].as_ptr(), len: grads[i].len() }).collect()
    };
    unsafe {
        assert!(clip::all_finite(&refs(&mut params, &grads)));
        assert_eq!(clip::first_non_finite(&refs(&mut params, &grads)), None);
        let n = grads[0].len();
        for (t, at, bad) in [(0, 0, f32::NAN), (0, n - 1, f32::INFINITY), (0, 2 * clip_chunk() + 5, f32::NEG_INFINITY), (1, 4, f32::NAN)] {
            let keep = grads[t][at];
            grads[t][at] = bad;
            assert!(!clip::all_finite(&refs(&mut params, &grads)), "{bad} at tensor {t}[{at}]");
            assert_eq!(clip::first_non_finite(&refs(&mut params, &grads)), Some(t));
            grads[t][at] = keep;
        }
        // Huge but finite values are finite (x − x stays 0).
        grads[0][7] = f32::MAX;
        assert!(clip::all_finite(&refs(&mut params, &grads)));
    }
}

fn clip_chunk() -> usize {
    super::tensors::CHUNK
}
