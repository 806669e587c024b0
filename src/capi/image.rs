//! Images as model inputs: `ipuflow_image_preprocess` (how an image becomes a tensor, shared by the image-folder
//! calibration data) and `ipuflow_image_load`.

use std::ffi::c_char;
use std::path::PathBuf;

use super::{
    arg_path, arg_wide_path, flag, guard, invalid_enum, ipuflow_status, null_arg, opt_str, out_ptr,
    write_out,
};
use crate::error::{Error, ErrorKind, Result};
use crate::quant::data::{ChannelOrder, ImagePreprocess, Layout};
use crate::runtime::TensorInfo;

/// Image layout: NCHW if the model input has 3 channels at axis 1, NHWC if at axis 3.
pub const IPUFLOW_LAYOUT_AUTO: i32 = 0;
/// Image layout: channels first.
pub const IPUFLOW_LAYOUT_NCHW: i32 = 1;
/// Image layout: channels last.
pub const IPUFLOW_LAYOUT_NHWC: i32 = 2;

/// Channel order red, green, blue.
pub const IPUFLOW_CHANNEL_ORDER_RGB: i32 = 0;
/// Channel order blue, green, red (OpenCV-trained models).
pub const IPUFLOW_CHANNEL_ORDER_BGR: i32 = 1;

/// How images become input tensors. Fill it with `ipuflow_image_preprocess_init` first (the defaults are the
/// anchor protocol), then change fields. Pixel values are converted as `(pixel - mean[c]) / std[c]` for float
/// inputs; uint8 inputs get the raw pixels.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ipuflow_image_preprocess {
    /// The model input the images feed; NULL: the model's only input. Copied at creation.
    pub input_name: *const c_char,
    /// Crop height and width; 0: the model input's spatial size (which must then be fixed).
    pub height: u32,
    pub width: u32,
    /// Shorter side after resizing (bilinear): > 0 that size; 0: stretch straight to the crop size;
    /// -1: `round(min(crop) * 256 / 224)` (the default).
    pub resize_shorter: i32,
    /// Per channel (in the channel order of the tensor), mean and standard deviation.
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// `IPUFLOW_LAYOUT_*`.
    pub layout: i32,
    /// `IPUFLOW_CHANNEL_ORDER_*`.
    pub channel_order: i32,
}

/// Fills `pre` with the defaults: only input, model size, shorter side 256/224 of the crop, mean 127, std 128,
/// layout from the model, RGB.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT. Thread-safe.
///
/// Ownership: `*pre` is the caller's struct, filled in place; nothing is kept.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_image_preprocess_init(
    pre: *mut ipuflow_image_preprocess,
) -> ipuflow_status {
    guard(|| {
        let pre = out_ptr(pre, "pre")?;
        write_out(
            pre,
            ipuflow_image_preprocess {
                input_name: std::ptr::null(),
                height: 0,
                width: 0,
                resize_shorter: -1,
                mean: [127.0; 3],
                std: [128.0; 3],
                layout: IPUFLOW_LAYOUT_AUTO,
                channel_order: IPUFLOW_CHANNEL_ORDER_RGB,
            },
        );
        Ok(())
    })
}

pub(crate) unsafe fn image_preprocess(p: &ipuflow_image_preprocess) -> Result<ImagePreprocess> {
    // NULL: the model's only input; "" is refused like any empty name.
    let input = match opt_str(p.input_name, "pre->input_name")? {
        Some("") => {
            return Err(Error::invalid_argument(
                "argument 'pre->input_name' is empty",
            ))
        }
        s => s.map(str::to_string),
    };
    let size = match (p.height, p.width) {
        (0, 0) => None,
        (0, _) | (_, 0) => {
            return Err(Error::invalid_argument(format!(
                "pre->height ({}) and pre->width ({}) must both be 0 (model size) or both > 0",
                p.height, p.width
            )))
        }
        (h, w) => Some((h, w)),
    };
    let resize_shorter = match p.resize_shorter {
        -1 => None,
        n if n >= 0 => Some(n as u32),
        n => {
            return Err(Error::invalid_argument(format!(
                "pre->resize_shorter {n} must be -1, 0 or a size"
            )))
        }
    };
    let layout = match p.layout {
        IPUFLOW_LAYOUT_AUTO => Layout::Auto,
        IPUFLOW_LAYOUT_NCHW => Layout::Nchw,
        IPUFLOW_LAYOUT_NHWC => Layout::Nhwc,
        v => {
            return Err(invalid_enum(
                "pre->layout",
                v,
                "IPUFLOW_LAYOUT_AUTO/NCHW/NHWC (0..2)",
            ))
        }
    };
    let order = match p.channel_order {
        IPUFLOW_CHANNEL_ORDER_RGB => ChannelOrder::Rgb,
        IPUFLOW_CHANNEL_ORDER_BGR => ChannelOrder::Bgr,
        v => {
            return Err(invalid_enum(
                "pre->channel_order",
                v,
                "IPUFLOW_CHANNEL_ORDER_RGB/BGR (0, 1)",
            ))
        }
    };
    let pre = ImagePreprocess {
        input,
        size,
        resize_shorter,
        mean: p.mean,
        std: p.std,
        layout,
        order,
        flip_horizontal: false,
    };
    pre.validate()?;
    Ok(pre)
}

/// Loads one image file and preprocesses it exactly as `ipuflow_calib_data_create_from_image_dir` does, into a
/// caller buffer of floats (batch 1), e.g. to evaluate a model on the same preprocessing.
///
/// - `pre`: `height` and `width` must be set (> 0); `IPUFLOW_LAYOUT_AUTO` means NCHW; `input_name` is ignored.
/// - `flip_horizontal`: 0 or 1 (mirror left-right after cropping).
/// - `out`, `out_count`: exactly `3 * height * width` floats, written in the layout asked for.
///
/// Errors: IPUFLOW_STATUS_NULL_ARGUMENT, IPUFLOW_STATUS_INVALID_UTF8, IPUFLOW_STATUS_INVALID_ARGUMENT (sizes,
/// mean/std), IPUFLOW_STATUS_INVALID_ENUM, IPUFLOW_STATUS_BUFFER_TOO_SMALL (`out_count` differs from
/// 3 * height * width), IPUFLOW_STATUS_FILE_NOT_FOUND, IPUFLOW_STATUS_FILE_READ (unreadable or undecodable image).
/// `out` is written only on success. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_image_load(
    path: *const c_char,
    pre: *const ipuflow_image_preprocess,
    flip_horizontal: i32,
    out: *mut f32,
    out_count: usize,
) -> ipuflow_status {
    guard(|| {
        image_load(
            arg_path(path, "path")?,
            pre,
            flip_horizontal,
            out,
            out_count,
        )
    })
}

/// Same as `ipuflow_image_load` with a NUL-terminated UTF-16 path (`wchar_t*` on Windows).
///
/// Errors: as `ipuflow_image_load` (IPUFLOW_STATUS_INVALID_UTF8: invalid UTF-16). `out` is written only on success.
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn ipuflow_image_load_w(
    path: *const u16,
    pre: *const ipuflow_image_preprocess,
    flip_horizontal: i32,
    out: *mut f32,
    out_count: usize,
) -> ipuflow_status {
    guard(|| {
        image_load(
            arg_wide_path(path, "path")?,
            pre,
            flip_horizontal,
            out,
            out_count,
        )
    })
}

unsafe fn image_load(
    p: PathBuf,
    pre: *const ipuflow_image_preprocess,
    flip_horizontal: i32,
    out: *mut f32,
    out_count: usize,
) -> Result<()> {
    let out = out_ptr(out, "out")?;
    let pre_c = pre.as_ref().ok_or_else(|| null_arg("pre"))?;
    let mut pre = image_preprocess(&ipuflow_image_preprocess {
        input_name: std::ptr::null(),
        ..*pre_c
    })?;
    pre.flip_horizontal = flag(flip_horizontal, "flip_horizontal")?;
    let (h, w) = pre
        .size
        .ok_or_else(|| Error::invalid_argument("pre->height and pre->width must be set (> 0)"))?;
    let need = 3usize * h as usize * w as usize;
    if out_count != need {
        return Err(Error::new(
            ErrorKind::BufferTooSmall,
            format!("out_count is {out_count}; a {h}x{w} image needs exactly {need} floats"),
        ));
    }
    let layout = if pre.layout == Layout::Nhwc {
        Layout::Nhwc
    } else {
        Layout::Nchw
    };
    let shape = if layout == Layout::Nhwc {
        vec![1, h as i64, w as i64, 3]
    } else {
        vec![1, 3, h as i64, w as i64]
    };
    let info = TensorInfo {
        name: "image".into(),
        kind: crate::runtime::ValueKind::Tensor,
        element_type_code: 1,
        shape,
        dim_names: vec![String::new(); 4],
    };
    let r = ImagePreprocess { layout, ..pre }.resolve(std::slice::from_ref(&info))?;
    let t = r.load(&p)?;
    let dst = std::slice::from_raw_parts_mut(out as *mut u8, need * 4);
    dst.copy_from_slice(&t.data);
    Ok(())
}
