//! `Add`: the elementwise sum of two or more inputs of one shape (`a + b`, no
//! broadcasting). Backward hands dout to every input, overwriting or adding per
//! input as the plan says, one input at a time, so the same value read twice
//! (Add(x, x)) gets 2·dout.

use super::relu::NoConfig;
use super::{Backward, Forward, Op};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct Add {
    shape: Vec<usize>,
    inputs: usize,
}

pub fn build(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    super::config::parse::<NoConfig>(name, "Add", config)?;
    if inputs.len() < 2 {
        return Err(Error::graph(name, format!("{name} (Add) takes two or more inputs, got {}", inputs.len())));
    }
    if let Some(i) = inputs.iter().position(|s| *s != inputs[0]) {
        return Err(Error::graph(
            name,
            format!(
                "{name} (Add) adds inputs of one shape: input 0 has shape {:?} but input {i} has shape {:?}",
                inputs[0], inputs[i]
            ),
        ));
    }
    Ok(Box::new(Add { shape: inputs[0].clone(), inputs: inputs.len() }))
}

impl Op for Add {
    fn kind(&self) -> &'static str {
        "Add"
    }
    fn output_shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    fn forward(&mut self, cx: &Forward) {
        // out = Σ_i in_i
        let out = cx.output();
        out.copy_from_slice(cx.input(0));
        for i in 1..self.inputs {
            out.iter_mut().zip(cx.input(i)).for_each(|(o, &x)| *o += x);
        }
    }
    fn backward(&mut self, cx: &Backward) {
        // din_i (+)= dout, for each input in turn (two slots may share one buffer).
        let dout = &*cx.dout();
        for i in 0..self.inputs {
            let Some(d) = cx.dinput(i) else { continue };
            super::write_grad(d, dout, cx.accumulate(i));
        }
    }
    fn clone_box(&self) -> Box<dyn Op> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::Model;
    use crate::ops::testing::{check_gradients, GradCheck};
    use serde_json::json;

    /// A spec from (name, op, inputs, config) rows; output the last node.
    pub(crate) fn graph(shape: &[usize], nodes: &[(&str, &str, &[&str], serde_json::Value)]) -> String {
        json!({
            "format": "ferronet-graph",
            "version": 1,
            "inputs": [{ "name": "input", "shape": shape }],
            "nodes": nodes.iter().map(|(n, op, ins, c)| json!({ "name": n, "op": op, "inputs": ins, "config": c })).collect::<Vec<_>>(),
            "outputs": [nodes.last().unwrap().0],
        })
        .to_string()
    }

    #[test]
    fn exact_sum_of_three() {
        let s = graph(&[3], &[("t", "Tanh", &["input"], json!(null)), ("s", "Add", &["input", "t", "input"], json!(null))]);
        let mut m = Model::from_json(&s, 0).unwrap();
        m.set_input(1, &[0.0, 1.0, -2.0]);
        let y = m.forward(1).to_vec();
        let want: Vec<f32> = [0.0f32, 1.0, -2.0].iter().map(|&x| 2.0 * x + x.tanh()).collect();
        assert_eq!(y, want);
    }

    #[test]
    fn add_of_a_value_with_itself() {
        // Add(x, x) on the graph input and on a hidden value: each gets 2·dout.
        let s = graph(&[4], &[("a", "Add", &["input", "input"], json!(null))]);
        check_gradients(&s, &GradCheck::default()).unwrap();
        let mut m = Model::from_json(&s, 0).unwrap();
        m.set_input_grad(true);
        m.set_input(1, &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m.forward(1), &[2.0, 4.0, 6.0, 8.0]);
        m.output_grad_buffer(1).copy_from_slice(&[1.0, -1.0, 0.5, 0.0]);
        m.backward(1);
        assert_eq!(m.input_grad(1).unwrap(), &[2.0, -2.0, 1.0, 0.0]);
        let s = graph(&[4], &[("l", "Linear", &["input"], json!({ "outFeatures": 3 })), ("a", "Add", &["l", "l"], json!(null))]);
        check_gradients(&s, &GradCheck::default()).unwrap();
    }

    #[test]
    fn residual_block() {
        // input → Linear → ReLU → Add(relu, input): the ReLU is fused into the Linear,
        // and the input's gradient is the Add's plus the Linear's.
        let s = graph(
            &[5],
            &[
                ("fc", "Linear", &["input"], json!({ "outFeatures": 5 })),
                ("relu", "ReLU", &["fc"], json!(null)),
                ("res", "Add", &["relu", "input"], json!(null)),
            ],
        );
        assert_eq!(Model::from_json(&s, 0).unwrap().plan_summary(), vec!["fc:Linear+ReLU", "res:Add"]);
        check_gradients(&s, &GradCheck { batch: 4, ..Default::default() }).unwrap();
    }

    #[test]
    fn fan_out_into_two_linears() {
        // One value feeding two Linear nodes, then added: its gradient accumulates.
        let tail = |src: &'static str| -> Vec<(&'static str, &'static str, &'static [&'static str], serde_json::Value)> {
            let ins: &'static [&'static str] = if src == "input" { &["input"] } else { &["h"] };
            vec![
                ("a", "Linear", ins, json!({ "outFeatures": 3 })),
                ("b", "Linear", ins, json!({ "outFeatures": 3 })),
                ("sum", "Add", &["a", "b"], json!(null)),
                ("out", "Sigmoid", &["sum"], json!(null)),
            ]
        };
        // The graph input (its gradient asked for) and a hidden value.
        let on_input = graph(&[4], &tail("input"));
        let mut nodes = vec![("h", "Tanh", &["input"][..], json!(null))];
        nodes.extend(tail("h"));
        let on_hidden = graph(&[4], &nodes);
        for s in [on_input, on_hidden] {
            check_gradients(&s, &GradCheck { batch: 3, ..Default::default() }).unwrap_or_else(|e| panic!("{s}: {e}"));
        }
    }

    #[test]
    fn shape_mismatch_names_the_node_and_both_shapes() {
        let s = graph(&[4], &[("l", "Linear", &["input"], json!({ "outFeatures": 3 })), ("sum", "Add", &["input", "l"], json!(null))]);
        let e = Model::from_json(&s, 0).unwrap_err().to_string();
        assert!(e.contains("sum (Add)") && e.contains("[4]") && e.contains("[3]"), "{e}");
        let s = graph(&[4], &[("sum", "Add", &["input"], json!(null))]);
        let e = Model::from_json(&s, 0).unwrap_err().to_string();
        assert!(e.contains("two or more"), "{e}");
    }
}
