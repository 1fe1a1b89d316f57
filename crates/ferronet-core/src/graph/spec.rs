//! The model spec: plain, versioned JSON (see docs/graph-spec.md), built by the
//! TypeScript layer, compiled here, carried inside model files as it is.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "ferronet-graph";
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSpec {
    pub format: String,
    pub version: u32,
    pub inputs: Vec<InputSpec>,
    pub nodes: Vec<NodeSpec>,
    pub outputs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub name: String,
    /// Per sample, PyTorch order, batch left out.
    pub shape: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    pub op: String,
    pub inputs: Vec<String>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub config: serde_json::Value,
    /// Parameter group of this node's tensors (an optimizer can own one group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl GraphSpec {
    pub fn from_json(text: &str) -> Result<GraphSpec> {
        let spec: GraphSpec = serde_json::from_str(text)
            .map_err(|e| Error::config("spec", format!("not a valid model spec: {e}")))?;
        if spec.format != FORMAT {
            return Err(Error::config(
                "spec.format",
                format!("must be {FORMAT:?}, got {:?}", spec.format),
            ));
        }
        if spec.version != VERSION {
            return Err(Error::config(
                "spec.version",
                format!("version {} is not supported (this build reads version {VERSION})", spec.version),
            ));
        }
        Ok(spec)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a spec serialises")
    }

    /// A chain: input `input` of `shape`, then each (op, config) fed by the previous,
    /// nodes named "0", "1", ... as `nn.Sequential` numbers them.
    pub fn sequential(shape: &[usize], layers: &[(&str, serde_json::Value)]) -> GraphSpec {
        let mut nodes = Vec::new();
        let mut prev = "input".to_string();
        for (i, (op, config)) in layers.iter().enumerate() {
            nodes.push(NodeSpec {
                name: i.to_string(),
                op: op.to_string(),
                inputs: vec![prev],
                config: config.clone(),
                group: None,
            });
            prev = i.to_string();
        }
        GraphSpec {
            format: FORMAT.into(),
            version: VERSION,
            inputs: vec![InputSpec {
                name: "input".into(),
                shape: shape.to_vec(),
            }],
            nodes,
            outputs: vec![prev],
        }
    }
}
