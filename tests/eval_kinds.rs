//! `eval` by output kind (issue 11 item 6): SQNR and cosine for every output, top-1 agreement only for class
//! scores (a one-value output has none: it used to print 1.000 whatever the decisions), the kind given with
//! `--output-kind`, and what each metric means printed next to it. The metrics themselves are unit-tested in
//! src/eval (sequences, detection boxes).

mod ort_support;

use std::path::Path;

use ipuflow::onnx::proto::{AttributeProto, GraphProto, TensorProto};
use ort_support::cli::{expect as run, write_npy};
use ort_support::{model, node, vi, D};

/// x [1,4] -> y = Relu(x + shift) [1,4] (class scores) and p = ReduceMean(x + shift) [1,1] (one value).
fn two_outputs(shift: [f32; 4]) -> Vec<u8> {
    let mut mean = node("ReduceMean", &["s"], &["p"]);
    mean.attribute.push(AttributeProto {
        name: Some("keepdims".into()),
        r#type: Some(2),
        i: Some(1),
        ..Default::default()
    });
    model(GraphProto {
        name: Some("two".into()),
        node: vec![
            node("Add", &["x", "c"], &["s"]),
            node("Relu", &["s"], &["y"]),
            mean,
        ],
        initializer: vec![TensorProto {
            name: Some("c".into()),
            dims: vec![1, 4],
            data_type: Some(1),
            float_data: shift.to_vec(),
            ..Default::default()
        }],
        input: vec![vi("x", 1, &[D::Fixed(1), D::Fixed(4)])],
        output: vec![
            vi("y", 1, &[D::Fixed(1), D::Fixed(4)]),
            vi("p", 1, &[D::Fixed(1), D::Fixed(1)]),
        ],
        ..Default::default()
    })
}

#[test]
fn agreement_only_where_the_output_has_classes() {
    let dir = std::env::temp_dir().join(format!("ipuflow-eval-kinds-{}", std::process::id()));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..8 {
        let k = i as f32;
        write_npy(
            &data.join(format!("{i}.npy")),
            &[1, 4],
            &[k, 3.0 - k * 0.5, 1.0, (k * 1.7) % 4.0],
        );
    }
    let (a, b) = (dir.join("a.onnx"), dir.join("b.onnx"));
    std::fs::write(&a, two_outputs([0.0; 4])).unwrap();
    std::fs::write(&b, two_outputs([0.0, 0.0, 0.0, 2.5])).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let o = run(&["eval", &s(&a), &s(&b), "--data", &s(&data), "--json"], 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let outs = v["outputs"].as_array().unwrap();
    let names = |o: &serde_json::Value| -> Vec<String> {
        o["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(outs[0]["name"], "y");
    assert_eq!(outs[0]["kind"], "class_scores");
    assert_eq!(names(&outs[0]), ["sqnr_db", "cosine", "top1_agreement"]);
    let agree = outs[0]["metrics"][2]["value"].as_f64().unwrap();
    assert!(agree < 1.0, "the shift changes some decisions: {agree}");
    assert_eq!(outs[1]["name"], "p");
    assert_eq!(outs[1]["kind"], "values");
    assert_eq!(
        names(&outs[1]),
        ["sqnr_db", "cosine"],
        "a one-value output has no top-1"
    );
    assert!(outs[1]["metrics"][1]["value"].as_f64().unwrap() <= 1.0);

    // Text: the meaning next to each number; a given kind overrides the shape's.
    let o = run(
        &[
            "eval",
            &s(&a),
            &s(&b),
            "--data",
            &s(&data),
            "--output-kind",
            "y=values",
        ],
        0,
    );
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(
        t.contains("output y [1, 4] (Values, given)") && !t.contains("top1_agreement"),
        "{t}"
    );
    assert!(t.contains("cosine similarity of all values"), "{t}");
    let o = run(&["eval", &s(&a), &s(&b), "--data", &s(&data)], 0);
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(
        t.contains("highest-scoring class is the float model's"),
        "{t}"
    );
    run(
        &[
            "eval",
            &s(&a),
            &s(&b),
            "--data",
            &s(&data),
            "--output-kind",
            "nope=classes",
        ],
        1,
    );
    run(
        &[
            "eval",
            &s(&a),
            &s(&b),
            "--data",
            &s(&data),
            "--output-kind",
            "y=boxes",
        ],
        2,
    );
    let _ = std::fs::remove_dir_all(dir);
}
