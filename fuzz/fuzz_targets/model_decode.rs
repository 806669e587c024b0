//! Arbitrary bytes into `Model::from_bytes`: must return Ok or Err, never panic, abort or allocate without bound.
//! Whatever decodes must also summarize, encode, and decode again to the same bytes.
#![no_main]

use ipuflow::onnx::Model;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = Model::from_bytes(data, None) else {
        return;
    };
    let _ = model.summary();
    let Ok(bytes) = model.to_bytes() else { return };
    let again = Model::from_bytes(&bytes, None).expect("an encoded model decodes again");
    assert_eq!(
        again.to_bytes().expect("encodes again"),
        bytes,
        "encoding is stable"
    );
});
