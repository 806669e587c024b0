//! The main graph's nodes of a model without its weights: what the placement report needs to connect ONNX Runtime's
//! nodes (names, inputs, outputs). On the corpus's largest model (paraphrase-MiniLM, 69 MB) a whole second decode
//! took 0.11-0.23 s against 0.58-0.93 s of session creation (19-36 %); the nodes alone take 0.4 ms. prost skips
//! the fields these messages do not declare (initializers, value infos) without copying them.

use std::path::Path;

use prost::Message;

use crate::error::{Error, ErrorKind, Result};
use crate::onnx::proto::{GraphProto, ModelProto, NodeProto};

#[derive(Clone, PartialEq, Message)]
struct NodesOnlyModel {
    /// ModelProto.graph.
    #[prost(message, optional, tag = "7")]
    graph: Option<NodesOnlyGraph>,
}

#[derive(Clone, PartialEq, Message)]
struct NodesOnlyGraph {
    /// GraphProto.node.
    #[prost(message, repeated, tag = "1")]
    node: Vec<NodeProto>,
}

/// A model holding only its main graph's nodes, decoded from `bytes`. Errors: `ModelDecode`.
pub fn nodes_only(bytes: &[u8]) -> Result<ModelProto> {
    let m = NodesOnlyModel::decode(bytes).map_err(|e| {
        Error::new(
            ErrorKind::ModelDecode,
            format!("cannot decode the model's nodes: {e}"),
        )
    })?;
    Ok(ModelProto {
        graph: Some(GraphProto {
            node: m.graph.map(|g| g.node).unwrap_or_default(),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// [`nodes_only`] of a model file (a regular file, read through a read-only map). Errors: file access, `ModelDecode`.
pub fn nodes_only_of_file(path: &Path) -> Result<ModelProto> {
    let (file, len) = crate::onnx::fs::open_regular(path)?;
    // Mapping an empty file fails with an OS error that names no cause; say what is wrong, as `Model::load_file` does.
    if len == 0 {
        return Err(Error::new(
            ErrorKind::ModelDecode,
            format!("cannot decode '{}': the file is empty", path.display()),
        ));
    }
    // SAFETY: read-only map dropped before returning; decoding copies what it keeps (as Model::load_file does).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io("map", path, e))?;
    nodes_only(&map).map_err(|e| e.context(format!("'{}'", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty file is a decode error naming the file, not an OS map error.
    #[test]
    fn empty_file_is_named() {
        let dir = std::env::temp_dir().join(format!("ipuflow-nodes-only-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.onnx");
        std::fs::write(&path, b"").unwrap();
        let e = nodes_only_of_file(&path).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(e.kind(), ErrorKind::ModelDecode);
        assert!(
            e.to_string().contains("empty.onnx") && e.to_string().contains("file is empty"),
            "{e}"
        );
    }

    /// Nodes come back whole; the weights are not decoded.
    #[test]
    fn keeps_nodes_and_drops_weights() {
        let model = ModelProto {
            ir_version: Some(8),
            graph: Some(GraphProto {
                node: vec![NodeProto {
                    name: Some("n".into()),
                    op_type: Some("Relu".into()),
                    input: vec!["x".into()],
                    output: vec!["y".into()],
                    ..Default::default()
                }],
                initializer: vec![crate::onnx::proto::TensorProto {
                    name: Some("w".into()),
                    raw_data: Some(vec![1; 64]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let m = nodes_only(&model.encode_to_vec()).unwrap();
        let g = m.graph.unwrap();
        assert_eq!(g.node, model.graph.as_ref().unwrap().node);
        assert!(g.initializer.is_empty());
    }
}
