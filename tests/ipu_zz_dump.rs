#[test]
fn dump() {
    let name = std::env::var("M").unwrap();
    let m = ipuflow::onnx::Model::load_file(std::path::Path::new(&name)).unwrap();
    let p = ipuflow::ipu::preflight::preflight(m.proto(), ipuflow::ipu::Target::X2).unwrap();
    for n in &p.nodes { println!("{} {} {} | {}", n.index, n.op_type, n.supported_if_quantized, n.reason); }
    let g = m.proto().graph.as_ref().unwrap();
    for i in &g.input { println!("INPUT {:?}", i); }
    println!("value_info {}", g.value_info.len());
}
