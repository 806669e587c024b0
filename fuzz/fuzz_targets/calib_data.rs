//! Arbitrary bytes into the calibration readers of `src/quant/data.rs`: the `.npy` parser and the image decoder
//! with its resize/crop/normalize step. Each must return Ok or Err, never panic, abort or allocate without bound.
#![no_main]

use ipuflow::quant::data::{parse_npy, ChannelOrder, ImagePreprocess, Layout, ResolvedImage};
use ipuflow::runtime::ElementType;
use libfuzzer_sys::fuzz_target;

/// Two preprocessing set-ups, picked by the input's length so both paths see every kind of input: the float
/// NCHW default (shorter side resized, centre crop, mean/std) and the uint8 NHWC one (straight resize, BGR,
/// mirrored). Crops are small so the time goes into decoding, not into resizing.
fn image_reader(odd: bool) -> ResolvedImage {
    let pre = ImagePreprocess {
        size: Some((12, 10)),
        resize_shorter: odd.then_some(0),
        order: if odd {
            ChannelOrder::Bgr
        } else {
            ChannelOrder::Rgb
        },
        flip_horizontal: odd,
        ..ImagePreprocess::default()
    };
    ResolvedImage {
        input: "x".into(),
        size: (12, 10),
        layout: if odd { Layout::Nhwc } else { Layout::Nchw },
        element_type: if odd {
            ElementType::Uint8
        } else {
            ElementType::Float32
        },
        pre,
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = parse_npy(data) {
        // What parses is a consistent tensor: its view must not read past its bytes.
        let _ = t.view();
    }
    let reader = image_reader(data.len() % 2 == 1);
    if let Ok(t) = reader.load_bytes(data) {
        let _ = t.view();
    }
});
