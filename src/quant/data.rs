//! Calibration data: where the batches the calibrator runs come from.
//!
//! A [`CalibrationSource`] hands out one batch at a time (named tensors, borrowed from the source until the next
//! call), so nothing needs all samples in memory at once. Sources provided:
//! - [`TensorSamples`]: tensors already in memory;
//! - [`FnSource`]: a pull closure (the C ABI's TensorRT-style `getBatch` callback is built on the same trait);
//! - [`NpyDir`]: a directory of `.npy` files (one file per batch for a single-input model, or one subdirectory per
//!   batch holding `<input name>.npy` files);
//! - [`ImageFolder`]: a folder of JPEG/PNG images with preprocessing (resize, centre crop, mean/std, NCHW/NHWC,
//!   RGB/BGR).
//!
//! Batches are checked against the model by the calibrator: a wrong name, element type or shape is a
//! `TensorMismatch` error naming the tensor and both values (and the file, for file sources).

use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::onnx::DataType;
use crate::runtime::{ElementType, TensorInfo, TensorRef};

/// A tensor owning its bytes (row-major, native endianness).
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedTensor {
    pub element_type: ElementType,
    pub shape: Vec<i64>,
    pub data: Vec<u8>,
}

impl OwnedTensor {
    /// A float tensor; `TensorMismatch` if the element count does not match the shape.
    pub fn from_f32(shape: &[i64], values: &[f32]) -> Result<OwnedTensor> {
        let n = element_count(shape)
            .ok_or_else(|| Error::invalid_argument(format!("invalid shape {shape:?}")))?;
        if n != values.len() {
            return Err(Error::new(
                ErrorKind::TensorMismatch,
                format!(
                    "shape {shape:?} holds {n} elements but {} values were given",
                    values.len()
                ),
            ));
        }
        Ok(OwnedTensor {
            element_type: ElementType::Float32,
            shape: shape.to_vec(),
            data: f32_bytes(values).to_vec(),
        })
    }

    /// A tensor over raw bytes; `TensorMismatch` if the byte count does not match type and shape.
    pub fn from_bytes(
        element_type: ElementType,
        shape: &[i64],
        data: Vec<u8>,
    ) -> Result<OwnedTensor> {
        let size = element_type
            .size()
            .ok_or_else(|| Error::unsupported("string tensors cannot be calibration data"))?;
        let n = element_count(shape)
            .ok_or_else(|| Error::invalid_argument(format!("invalid shape {shape:?}")))?;
        if n.checked_mul(size) != Some(data.len()) {
            return Err(Error::new(
                ErrorKind::TensorMismatch,
                format!(
                    "{element_type} tensor of shape {shape:?} needs {} bytes, {} given",
                    n * size,
                    data.len()
                ),
            ));
        }
        Ok(OwnedTensor {
            element_type,
            shape: shape.to_vec(),
            data,
        })
    }

    pub fn view(&self) -> TensorRef<'_> {
        TensorRef::from_bytes(self.element_type, &self.shape, &self.data)
    }
}

/// The bytes of a float slice (native endianness), without copying.
fn f32_bytes(v: &[f32]) -> &[u8] {
    // SAFETY: any f32 is 4 plain bytes; u8 has alignment 1; the length covers exactly the slice.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}

fn element_count(shape: &[i64]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| {
        usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
    })
}

/// One batch: input name -> tensor, borrowed from the source until its next call, and where it came from.
#[derive(Clone, Debug)]
pub struct Batch<'a> {
    pub tensors: Vec<(String, TensorRef<'a>)>,
    /// Where the batch came from ("image 'x.jpg'", "in-memory sample 3", ...), for error messages.
    pub origin: String,
}

impl<'a> Batch<'a> {
    /// A batch viewing owned named tensors.
    fn of(tensors: &'a [(String, OwnedTensor)], origin: String) -> Self {
        Batch {
            tensors: tensors.iter().map(|(n, t)| (n.clone(), t.view())).collect(),
            origin,
        }
    }
}

/// Where calibration batches come from.
pub trait CalibrationSource {
    /// How many batches there will be, if known (for progress reports).
    fn len_hint(&self) -> Option<usize> {
        None
    }
    /// The next batch for a model with `inputs`, or `None` when the data is exhausted. Errors stop calibration.
    fn next_batch(&mut self, inputs: &[TensorInfo]) -> Result<Option<Batch<'_>>>;
}

/// Calibration samples held in memory, each a set of named tensors (one batch each).
#[derive(Clone, Debug, Default)]
pub struct TensorSamples {
    samples: Vec<Vec<(String, OwnedTensor)>>,
    pos: usize,
}

impl TensorSamples {
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds one batch.
    pub fn push(&mut self, sample: Vec<(String, OwnedTensor)>) {
        self.samples.push(sample);
    }
    pub fn len(&self) -> usize {
        self.samples.len()
    }
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
    /// Starts over from the first sample.
    pub fn rewind(&mut self) {
        self.pos = 0;
    }
}

impl CalibrationSource for TensorSamples {
    fn len_hint(&self) -> Option<usize> {
        Some(self.samples.len())
    }
    fn next_batch(&mut self, _inputs: &[TensorInfo]) -> Result<Option<Batch<'_>>> {
        let Some(s) = self.samples.get(self.pos) else {
            return Ok(None);
        };
        self.pos += 1;
        Ok(Some(Batch::of(
            s,
            format!("in-memory sample {}", self.pos - 1),
        )))
    }
}

/// A pull closure: called for each batch with the model's inputs; returns `Ok(None)` when done.
pub struct FnSource<F> {
    f: F,
    len: Option<usize>,
    current: Vec<(String, OwnedTensor)>,
    count: usize,
}

impl<F: FnMut(&[TensorInfo]) -> Result<Option<Vec<(String, OwnedTensor)>>>> FnSource<F> {
    /// `len`: the number of batches if known (progress only).
    pub fn new(len: Option<usize>, f: F) -> Self {
        FnSource {
            f,
            len,
            current: Vec::new(),
            count: 0,
        }
    }
}

impl<F: FnMut(&[TensorInfo]) -> Result<Option<Vec<(String, OwnedTensor)>>>> CalibrationSource
    for FnSource<F>
{
    fn len_hint(&self) -> Option<usize> {
        self.len
    }
    fn next_batch(&mut self, inputs: &[TensorInfo]) -> Result<Option<Batch<'_>>> {
        match (self.f)(inputs)? {
            None => Ok(None),
            Some(b) => {
                self.count += 1;
                self.current = b;
                Ok(Some(Batch::of(
                    &self.current,
                    format!("batch {}", self.count - 1),
                )))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// .npy files

/// Reads a `.npy` file (format versions 1, 2 and 3; C order; little-endian or byte-sized dtypes: f2 f4 f8, i1 i2
/// i4 i8, u1 u2 u4 u8, b1). Errors name the file: `FileNotFound`/`FileRead`, `Unsupported` for Fortran order,
/// big-endian or other dtypes, `InvalidArgument` for a malformed header or a data size that does not match.
pub fn read_npy(path: &Path) -> Result<OwnedTensor> {
    let bytes = crate::onnx::fs::read_regular(path)?;
    parse_npy(&bytes).map_err(|e| e.context(format!("'{}'", path.display())))
}

/// Most nested brackets a `.npy` header may hold: a plain array's header has two levels (the dict and the shape
/// tuple); the bound keeps the header parser's recursion shallow on hostile input.
const NPY_MAX_HEADER_NESTING: usize = 8;

/// Parses the bytes of a `.npy` file (see [`read_npy`]). The header is read by the `npyz` crate; the checks here
/// bound what it is handed (header length, nesting, the shape's element count) so that a hostile header cannot
/// make it allocate, recurse or multiply past our limits.
pub fn parse_npy(bytes: &[u8]) -> Result<OwnedTensor> {
    let bad = |m: &str| Error::invalid_argument(format!("not a valid .npy file: {m}"));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("missing the \\x93NUMPY magic"));
    }
    let (hlen, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        2 | 3 => return Err(bad("truncated header")),
        v => {
            return Err(Error::unsupported(format!(
                ".npy format version {v} is not supported (1, 2 and 3 are)"
            )))
        }
    };
    // npyz allocates the header's declared length before reading it.
    let end = start
        .checked_add(hlen)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad("header longer than the file"))?;
    check_npy_header_text(&bytes[start..end])?;
    let header = npyz::NpyHeader::from_reader(&bytes[..end])
        .map_err(|e| bad(&format!("malformed header ({e})")))?;
    if header.order() == npyz::Order::Fortran {
        return Err(Error::unsupported(
            "Fortran-order arrays are not supported; save with np.ascontiguousarray",
        ));
    }
    let descr = header.dtype().descr();
    let npyz::DType::Plain(ts) = header.dtype() else {
        return Err(Error::unsupported(format!(
            "dtype {descr} is not supported (structured and sub-array dtypes are not)"
        )));
    };
    let et = npy_element_type(&ts)
        .ok_or_else(|| Error::unsupported(format!("dtype '{descr}' is not supported")))?;
    if ts.endianness() == npyz::Endianness::Big && et.size() != Some(1) {
        return Err(Error::unsupported(format!(
            "dtype '{descr}': only little-endian data is supported"
        )));
    }
    let shape: Vec<i64> = header
        .shape()
        .iter()
        .map(|&d| i64::try_from(d))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad("a dimension in 'shape' is too large"))?;
    let data = &bytes[end..];
    // A header of a few bytes can declare any shape: bounded before it is compared or used.
    let need =
        crate::limits::tensor_bytes("'shape' in the .npy header", &shape, et.size().unwrap_or(1))?;
    if data.len() != need {
        return Err(Error::invalid_argument(format!(
            "dtype '{descr}' shape {shape:?} needs {need} data bytes, the file has {}",
            data.len()
        )));
    }
    Ok(OwnedTensor {
        element_type: et,
        shape,
        data: data.to_vec(),
    })
}

/// Bounds on the header text checked before `npyz` parses it: it multiplies the shape's dimensions unchecked
/// (a panic in overflow-checked builds) and parses nested brackets recursively. The integers of a header whose
/// digits (other than lone 0s and 1s) add up to at most 18 multiply to less than 10^18, so no product of them overflows; a real array's
/// header is far below that (an array that is not is beyond [`crate::limits::MAX_TENSOR_BYTES`] anyway, unless a
/// dimension is 0).
fn check_npy_header_text(text: &[u8]) -> Result<()> {
    let bad = |m: &str| Error::invalid_argument(format!("not a valid .npy file: {m}"));
    let (mut depth, mut deepest) = (0usize, 0usize);
    for &c in text {
        match c {
            b'(' | b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    // Runs of digits; a 0 or 1 adds nothing to a product's size (a rank-30 shape of ones is fine).
    let digits: usize = text
        .split(|c| !c.is_ascii_digit())
        .filter(|run| !matches!(*run, b"" | b"0" | b"1"))
        .map(|run| run.len())
        .sum();
    if deepest > NPY_MAX_HEADER_NESTING {
        return Err(bad(&format!(
            "header nests brackets {deepest} deep (at most {NPY_MAX_HEADER_NESTING})"
        )));
    }
    if digits > 18 {
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!(
                "'shape' in the .npy header may declare 10^18 elements or more ({digits} digits of numbers), over \
                 ipuflow's limit of {} bytes ({} GiB) per tensor",
                crate::limits::MAX_TENSOR_BYTES,
                crate::limits::MAX_TENSOR_BYTES >> 30
            ),
        ));
    }
    Ok(())
}

/// Our element type for a plain numpy dtype.
fn npy_element_type(ts: &npyz::TypeStr) -> Option<ElementType> {
    use npyz::TypeChar::{Bool, Float, Int, Uint};
    Some(match (ts.type_char(), ts.size_field()) {
        (Float, 4) => ElementType::Float32,
        (Float, 2) => ElementType::Float16,
        (Float, 8) => ElementType::Float64,
        (Int, 1) => ElementType::Int8,
        (Uint, 1) => ElementType::Uint8,
        (Bool, 1) => ElementType::Bool,
        (Int, 2) => ElementType::Int16,
        (Uint, 2) => ElementType::Uint16,
        (Int, 4) => ElementType::Int32,
        (Uint, 4) => ElementType::Uint32,
        (Int, 8) => ElementType::Int64,
        (Uint, 8) => ElementType::Uint64,
        _ => return None,
    })
}

/// A directory of `.npy` files: for a single-input model one file per batch (sorted by name); otherwise one
/// subdirectory per batch (sorted) holding `<input name>.npy` for each input.
#[derive(Debug)]
pub struct NpyDir {
    entries: Vec<PathBuf>,
    pos: usize,
    current: Vec<(String, OwnedTensor)>,
}

impl NpyDir {
    /// Lists `dir`. Errors: `FileNotFound` / `FileRead` naming the directory; `Calibration` if it holds no `.npy`
    /// file and no subdirectory.
    pub fn open(dir: &Path) -> Result<NpyDir> {
        let rd = std::fs::read_dir(dir).map_err(|e| Error::io("read", dir, e))?;
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        for e in rd {
            let e = e.map_err(|e| Error::io("read", dir, e))?;
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("npy")) {
                files.push(p);
            }
        }
        files.sort();
        dirs.sort();
        let entries = if files.is_empty() { dirs } else { files };
        if entries.is_empty() {
            return Err(Error::new(
                ErrorKind::Calibration,
                format!(
                    "no calibration data: '{}' holds no .npy file and no sample subdirectory",
                    dir.display()
                ),
            ));
        }
        Ok(NpyDir {
            entries,
            pos: 0,
            current: Vec::new(),
        })
    }
}

impl CalibrationSource for NpyDir {
    fn len_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
    fn next_batch(&mut self, inputs: &[TensorInfo]) -> Result<Option<Batch<'_>>> {
        let Some(p) = self.entries.get(self.pos).cloned() else {
            return Ok(None);
        };
        self.pos += 1;
        self.current.clear();
        if p.is_dir() {
            for i in inputs {
                let f = p.join(format!("{}.npy", i.name));
                if !f.exists() {
                    return Err(Error::new(
                        ErrorKind::TensorMismatch,
                        format!(
                            "sample directory '{}' has no file for input '{}' (expected '{}')",
                            p.display(),
                            i.name,
                            f.display()
                        ),
                    ));
                }
                self.current.push((i.name.clone(), read_npy(&f)?));
            }
        } else {
            if inputs.len() != 1 {
                let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
                return Err(Error::new(
                    ErrorKind::Calibration,
                    format!(
                        "'{}': a directory of .npy files feeds single-input models only; this model has inputs {names:?}: \
                         use one subdirectory per sample holding <input name>.npy files",
                        p.display()
                    ),
                ));
            }
            self.current.push((inputs[0].name.clone(), read_npy(&p)?));
        }
        Ok(Some(Batch::of(&self.current, format!("'{}'", p.display()))))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Images

/// Memory layout of an image tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Layout {
    /// NCHW when the model input has 3 channels at axis 1, NHWC when at axis 3 (NCHW if both or neither).
    #[default]
    Auto,
    Nchw,
    Nhwc,
}

/// Channel order of an image tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ChannelOrder {
    #[default]
    Rgb,
    Bgr,
}

/// How images become input tensors: resize (shorter side, bilinear), centre crop, `(pixel - mean) / std`,
/// channel order and layout. The defaults are the anchor protocol: crop to the model's input size, shorter side
/// resized to `crop * 256 / 224`, mean 127, std 128, RGB, layout from the model.
#[derive(Clone, Debug, PartialEq)]
pub struct ImagePreprocess {
    /// The input to feed; `None`: the model's only input.
    pub input: Option<String>,
    /// Crop (height, width); `None`: the model input's spatial size (must then be fixed).
    pub size: Option<(u32, u32)>,
    /// Shorter side after resizing; `None`: `round(min(crop) * 256 / 224)`; `Some(0)`: resize straight to the crop
    /// size (no aspect ratio kept).
    pub resize_shorter: Option<u32>,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub layout: Layout,
    pub order: ChannelOrder,
    /// Mirror left-right (evaluation of flipped inputs).
    pub flip_horizontal: bool,
}

impl Default for ImagePreprocess {
    fn default() -> Self {
        ImagePreprocess {
            input: None,
            size: None,
            resize_shorter: None,
            mean: [127.0; 3],
            std: [128.0; 3],
            layout: Layout::Auto,
            order: ChannelOrder::Rgb,
            flip_horizontal: false,
        }
    }
}

impl ImagePreprocess {
    /// Checks the numbers: std not 0, finite mean/std, non-zero sizes.
    pub fn validate(&self) -> Result<()> {
        for (i, (&m, &s)) in self.mean.iter().zip(&self.std).enumerate() {
            if !m.is_finite() || !s.is_finite() || s == 0.0 {
                return Err(Error::invalid_argument(format!(
                    "image preprocessing channel {i}: mean {m} / std {s} must be finite with std != 0"
                )));
            }
        }
        if let Some((h, w)) = self.size {
            if h == 0 || w == 0 {
                return Err(Error::invalid_argument(format!(
                    "image crop size {h}x{w} must not be 0"
                )));
            }
            crate::limits::check_image_side("image crop size", h.max(w))?;
        }
        if let Some(r) = self.resize_shorter {
            crate::limits::check_image_side("image resize size (shorter side)", r)?;
        }
        // A tiny std makes every normalized value infinite: refused here, naming the option, rather than
        // calibrating on infinities.
        for (i, &s) in self.std.iter().enumerate() {
            if !(1.0 / s).is_finite() {
                return Err(Error::invalid_argument(format!(
                    "image preprocessing channel {i}: std {s:e} is too small (1/std is not a finite float)"
                )));
            }
        }
        Ok(())
    }

    /// Resolves layout, size, input name and element type against the model's inputs.
    pub fn resolve(&self, inputs: &[TensorInfo]) -> Result<ResolvedImage> {
        self.validate()?;
        let info = match &self.input {
            Some(n) => inputs.iter().find(|i| &i.name == n).ok_or_else(|| {
                let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
                Error::new(
                    ErrorKind::TensorMismatch,
                    format!("image input '{n}' is not an input of the model (inputs: {names:?})"),
                )
            })?,
            None => match inputs {
                [one] => one,
                _ => {
                    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
                    return Err(Error::invalid_argument(format!(
                        "the model has {} inputs {names:?}: say which one the images feed",
                        inputs.len()
                    )));
                }
            },
        };
        let s = &info.shape;
        if s.len() != 4 {
            return Err(Error::new(
                ErrorKind::TensorMismatch,
                format!("input '{}' has rank {} (shape {s:?}); images need a rank-4 input (NCHW or NHWC)", info.name, s.len()),
            ));
        }
        let layout = match self.layout {
            Layout::Auto => {
                if s[1] == 3 || s[3] != 3 {
                    Layout::Nchw
                } else {
                    Layout::Nhwc
                }
            }
            l => l,
        };
        let (ch, hd, wd) = if layout == Layout::Nchw {
            (s[1], s[2], s[3])
        } else {
            (s[3], s[1], s[2])
        };
        if ch >= 0 && ch != 3 {
            return Err(Error::new(
                ErrorKind::TensorMismatch,
                format!("input '{}' (shape {s:?}) has {ch} channels in {layout:?} layout; images give 3", info.name),
            ));
        }
        let size = match self.size {
            Some(sz) => sz,
            None if hd > 0 && wd > 0 => {
                // The model declares this size: bounded like the option.
                let side = u32::try_from(hd.max(wd)).unwrap_or(u32::MAX);
                crate::limits::check_image_side(
                    &format!("the image size of input '{}' (shape {s:?})", info.name),
                    side,
                )?;
                (hd as u32, wd as u32)
            }
            None => {
                return Err(Error::invalid_argument(format!(
                    "input '{}' has a dynamic spatial size (shape {s:?}): give the image size explicitly",
                    info.name
                )))
            }
        };
        let et = match info.element_type_code {
            c if c == DataType::Float.onnx() => ElementType::Float32,
            c if c == DataType::Uint8.onnx() => ElementType::Uint8,
            c => {
                return Err(Error::new(
                    ErrorKind::TensorMismatch,
                    format!(
                        "input '{}' has element type {}; images feed float or uint8 inputs",
                        info.name,
                        crate::onnx::element_type_name(c)
                    ),
                ))
            }
        };
        Ok(ResolvedImage {
            input: info.name.clone(),
            size,
            layout,
            element_type: et,
            pre: self.clone(),
        })
    }
}

/// [`ImagePreprocess`] resolved against a model input.
#[derive(Clone, Debug)]
pub struct ResolvedImage {
    pub input: String,
    /// (height, width)
    pub size: (u32, u32),
    pub layout: Layout,
    /// Float32 (normalized) or Uint8 (raw pixels).
    pub element_type: ElementType,
    pub pre: ImagePreprocess,
}

impl ResolvedImage {
    /// The tensor shape of one image (batch 1).
    pub fn shape(&self) -> Vec<i64> {
        let (h, w) = (self.size.0 as i64, self.size.1 as i64);
        match self.layout {
            Layout::Nhwc => vec![1, h, w, 3],
            _ => vec![1, 3, h, w],
        }
    }

    /// Decodes and preprocesses one image file into a batch-1 tensor.
    pub fn load(&self, path: &Path) -> Result<OwnedTensor> {
        let (file, _) = crate::onnx::fs::open_regular(path)?;
        let reader = image::ImageReader::new(std::io::BufReader::new(file))
            .with_guessed_format()
            .map_err(|e| Error::io("read", path, e))?;
        let reader = if reader.format() == Some(image::ImageFormat::Jpeg) {
            // The JPEG decoder fills a truncated scan with grey and succeeds: such a file would calibrate silently.
            // The bytes of the file already open are checked for the end of the last scan first.
            use std::io::{Read, Seek};
            let mut file = reader.into_inner();
            let mut bytes = Vec::new();
            file.rewind()
                .and_then(|_| file.read_to_end(&mut bytes))
                .map_err(|e| Error::io("read", path, e))?;
            if !jpeg_complete(&bytes) {
                return Err(Error::new(
                    ErrorKind::FileRead,
                    format!(
                        "image '{}' is a truncated JPEG (no end-of-image marker after its last scan)",
                        path.display()
                    ),
                ));
            }
            image::ImageReader::with_format(std::io::Cursor::new(bytes), image::ImageFormat::Jpeg)
                .decode()
        } else {
            reader.decode()
        };
        let img = reader.map_err(|e| {
            Error::new(
                ErrorKind::FileRead,
                format!("cannot decode image '{}': {e}", path.display()),
            )
        })?;
        self.tensor_of(&img.to_rgb8())
            .map_err(|e| e.context(format!("image '{}'", path.display())))
    }

    /// Decodes and preprocesses an image held in memory (JPEG or PNG; the format is read from the bytes) into a
    /// batch-1 tensor, like [`ResolvedImage::load`]. Errors: `FileRead` when the bytes are not a decodable image.
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<OwnedTensor> {
        let img = image::load_from_memory(bytes)
            .map_err(|e| Error::new(ErrorKind::FileRead, format!("cannot decode image: {e}")))?;
        self.tensor_of(&img.to_rgb8())
    }

    /// Preprocessing and layout of a decoded image (shared by the file and the in-memory readers).
    fn tensor_of(&self, rgb: &image::RgbImage) -> Result<OwnedTensor> {
        let pixels = self.preprocess_rgb(rgb)?;
        let shape = self.shape();
        match self.element_type {
            ElementType::Uint8 => OwnedTensor::from_bytes(ElementType::Uint8, &shape, pixels),
            _ => {
                let p = &self.pre;
                let (hh, ww) = (self.size.0 as usize, self.size.1 as usize);
                let mut out = vec![0f32; hh * ww * 3];
                let inv: [f32; 3] = [1.0 / p.std[0], 1.0 / p.std[1], 1.0 / p.std[2]];
                self.relayout(hh * ww, |c_out, from, to| {
                    out[to] = (pixels[from] as f32 - p.mean[c_out]) * inv[c_out];
                });
                OwnedTensor::from_f32(&shape, &out)
            }
        }
    }

    /// Resize (bilinear, shorter side), centre crop, optional flip; returns HWC RGB (or BGR / NCHW for uint8 inputs)
    /// bytes.
    fn preprocess_rgb(&self, rgb: &image::RgbImage) -> Result<Vec<u8>> {
        use image::imageops::{self, FilterType};
        let (ch, cw) = self.size;
        let (w, h) = rgb.dimensions();
        let target = match self.pre.resize_shorter {
            Some(0) => None,
            Some(s) => Some(s as f64),
            None => Some((ch.min(cw) as f64 * 256.0 / 224.0).round()),
        };
        let resized = match target {
            None => imageops::resize(rgb, cw, ch, FilterType::Triangle),
            Some(t) => {
                let s = t / (w.min(h) as f64);
                let nw = ((w as f64 * s).round() as u32).max(cw);
                let nh = ((h as f64 * s).round() as u32).max(ch);
                // A long thin image resized on its shorter side grows without bound along the other one.
                crate::limits::tensor_bytes(
                    &format!("{w}x{h} image resized to {nw}x{nh}"),
                    &[nh as i64, nw as i64, 3],
                    1,
                )?;
                if (nw, nh) == (w, h) {
                    rgb.clone()
                } else {
                    imageops::resize(rgb, nw, nh, FilterType::Triangle)
                }
            }
        };
        let (rw, rh) = resized.dimensions();
        let (l, t) = ((rw - cw) / 2, (rh - ch) / 2);
        let mut crop = imageops::crop_imm(&resized, l, t, cw, ch).to_image();
        if self.pre.flip_horizontal {
            imageops::flip_horizontal_in_place(&mut crop);
        }
        let raw = crop.into_raw();
        if self.element_type != ElementType::Uint8 {
            return Ok(raw);
        }
        // uint8 inputs: channel order and layout applied here (no normalization).
        let mut out = vec![0u8; raw.len()];
        self.relayout((ch * cw) as usize, |_, from, to| out[to] = raw[from]);
        Ok(out)
    }

    /// Visits the `n` pixels' channel values of an HWC RGB buffer: `put(c_out, from, to)` with `from` the index
    /// in that buffer and `to` the index in the model's layout and channel order (`c_out` its channel).
    fn relayout(&self, n: usize, mut put: impl FnMut(usize, usize, usize)) {
        let order: [usize; 3] = if self.pre.order == ChannelOrder::Bgr {
            [2, 1, 0]
        } else {
            [0, 1, 2]
        };
        for (c_out, &c_in) in order.iter().enumerate() {
            for i in 0..n {
                let to = match self.layout {
                    Layout::Nhwc => i * 3 + c_out,
                    _ => c_out * n + i,
                };
                put(c_out, i * 3 + c_in, to);
            }
        }
    }
}

/// Whether a JPEG's last scan is followed by the end-of-image marker (FF D9). Inside entropy-coded data an FF is
/// always followed by 00 or a restart marker, so the last FF DA (start of scan) and a later FF D9 delimit the main
/// image's data; an embedded thumbnail's markers come before it. Trailing bytes after FF D9 are allowed.
fn jpeg_complete(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_sos {
        Some(i) => bytes[i..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
    }
}

/// Lists the JPEG/PNG files of a folder, sorted by name. Errors: `FileNotFound`/`FileRead` naming the folder.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io("read", dir, e))?;
    let mut files = Vec::new();
    for e in rd {
        let p = e.map_err(|e| Error::io("read", dir, e))?.path();
        let ext = p
            .extension()
            .and_then(|x| x.to_str())
            .map(|x| x.to_ascii_lowercase());
        if p.is_file() && matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png")) {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// A folder of JPEG/PNG images, one image per batch, preprocessed as [`ImagePreprocess`] says.
///
/// Images are decoded one step ahead on a helper thread (at most two waiting), so decoding overlaps the
/// calibration run of the previous image while memory stays bounded.
#[derive(Debug)]
pub struct ImageFolder {
    files: Vec<PathBuf>,
    pre: ImagePreprocess,
    resolved: Option<ResolvedImage>,
    pos: usize,
    current: Option<OwnedTensor>,
    prefetch: Option<Prefetch>,
}

#[derive(Debug)]
struct Prefetch {
    rx: std::sync::mpsc::Receiver<Result<OwnedTensor>>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        // Closing the channel stops the worker at its next send (after at most one more image).
        let (_, dead) = std::sync::mpsc::sync_channel(0);
        drop(std::mem::replace(&mut self.rx, dead));
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl ImageFolder {
    /// Lists `dir` (sorted). Errors: `FileNotFound`/`FileRead`; `Calibration` if it holds no JPEG/PNG file;
    /// `InvalidArgument` for bad preprocessing numbers.
    pub fn open(dir: &Path, pre: ImagePreprocess) -> Result<ImageFolder> {
        pre.validate()?;
        let files = list_images(dir)?;
        if files.is_empty() {
            return Err(Error::new(
                ErrorKind::Calibration,
                format!(
                    "no calibration data: '{}' holds no .jpg/.jpeg/.png image",
                    dir.display()
                ),
            ));
        }
        ImageFolder::from_files(files, pre)
    }

    /// A fixed list of image files.
    pub fn from_files(files: Vec<PathBuf>, pre: ImagePreprocess) -> Result<ImageFolder> {
        pre.validate()?;
        Ok(ImageFolder {
            files,
            pre,
            resolved: None,
            pos: 0,
            current: None,
            prefetch: None,
        })
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

impl CalibrationSource for ImageFolder {
    fn len_hint(&self) -> Option<usize> {
        Some(self.files.len())
    }
    fn next_batch(&mut self, inputs: &[TensorInfo]) -> Result<Option<Batch<'_>>> {
        if self.resolved.is_none() {
            let r = self.pre.resolve(inputs)?;
            let (tx, rx) = std::sync::mpsc::sync_channel(2);
            let (files, worker_r) = (self.files.clone(), r.clone());
            let worker = std::thread::Builder::new()
                .name("ipuflow-images".into())
                .spawn(move || {
                    for f in &files {
                        if tx.send(worker_r.load(f)).is_err() {
                            return;
                        }
                    }
                })
                .ok();
            // Without a thread (spawn failed), images are decoded inline below.
            self.prefetch = worker.map(|w| Prefetch {
                rx,
                worker: Some(w),
            });
            self.resolved = Some(r);
        }
        let Some(p) = self.files.get(self.pos) else {
            return Ok(None);
        };
        self.pos += 1;
        let r = self.resolved.as_ref().expect("resolved above");
        let t = match &self.prefetch {
            Some(pf) => pf
                .rx
                .recv()
                .map_err(|_| Error::internal("the image decoding thread stopped early"))??,
            None => r.load(p)?,
        };
        self.current = Some(t);
        let t = self.current.as_ref().expect("set above");
        Ok(Some(Batch {
            tensors: vec![(r.input.clone(), t.view())],
            origin: format!("image '{}'", p.display()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8], version: u8) -> Vec<u8> {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        let pre = if version == 1 { 10 } else { 12 };
        while !(pre + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut v = b"\x93NUMPY".to_vec();
        v.push(version);
        v.push(0);
        if version == 1 {
            v.extend((h.len() as u16).to_le_bytes());
        } else {
            v.extend((h.len() as u32).to_le_bytes());
        }
        v.extend(h.as_bytes());
        v.extend(data);
        v
    }

    #[test]
    fn npy_versions_and_dtypes() {
        let f: Vec<u8> = [1.0f32, -2.5]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let t = parse_npy(&npy("<f4", "(1, 2)", &f, 1)).unwrap();
        assert_eq!(
            (t.element_type, t.shape.clone()),
            (ElementType::Float32, vec![1, 2])
        );
        assert_eq!(t.data, f);
        let t = parse_npy(&npy("|u1", "(3,)", &[1, 2, 3], 2)).unwrap();
        assert_eq!((t.element_type, t.shape), (ElementType::Uint8, vec![3]));
        let i: Vec<u8> = [7i64].iter().flat_map(|x| x.to_le_bytes()).collect();
        let t = parse_npy(&npy("<i8", "()", &i, 1)).unwrap();
        assert_eq!((t.element_type, t.shape), (ElementType::Int64, vec![]));
        let t = parse_npy(&npy("<f2", "(2,)", &[0, 60, 0, 0], 3)).unwrap();
        assert_eq!(t.element_type, ElementType::Float16);
    }

    #[test]
    fn npy_errors() {
        assert!(parse_npy(b"hello world")
            .unwrap_err()
            .message()
            .contains("magic"));
        assert_eq!(
            parse_npy(&npy(">f4", "(1,)", &[0; 4], 1))
                .unwrap_err()
                .kind(),
            ErrorKind::Unsupported
        );
        assert_eq!(
            parse_npy(&npy("<c8", "(1,)", &[0; 8], 1))
                .unwrap_err()
                .kind(),
            ErrorKind::Unsupported
        );
        let e = parse_npy(&npy("<f4", "(2, 2)", &[0; 12], 1)).unwrap_err();
        assert!(e.message().contains("needs 16 data bytes"), "{e}");
        let mut v = npy("<f4", "(1,)", &[0; 4], 1);
        v[8] = 0xff; // header length past the end
        v[9] = 0xff;
        assert!(parse_npy(&v).is_err());
        // A non-ASCII byte-order character is refused as a malformed dtype, not a panic (a fuzzer's find).
        let e = parse_npy(&npy("\u{643}i1", "(1,)", &[0; 1], 1)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        let mut fortran = npy("<f4", "(1,)", &[0; 4], 1);
        let at = fortran.windows(5).position(|w| w == b"False").unwrap();
        fortran[at..at + 5].copy_from_slice(b"True ");
        assert_eq!(
            parse_npy(&fortran).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
    }

    /// Headers that would make the header parser multiply past u64 or recurse deeply are refused up front with
    /// an error, not a panic; a shape of many ones is still fine.
    #[test]
    fn npy_hostile_headers() {
        let huge = "(4294967296, 4294967296, 4294967296)";
        let e = parse_npy(&npy("<f4", huge, &[], 1)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
        let deep = format!("{}1,{}", "(".repeat(40), ")".repeat(40));
        let e = parse_npy(&npy("<f4", &deep, &[0; 4], 1)).unwrap_err();
        assert!(e.message().contains("nests brackets"), "{e}");
        let ones = format!("({})", vec!["1"; 30].join(", "));
        let t = parse_npy(&npy("<f4", &ones, &[0; 4], 1)).unwrap();
        assert_eq!(t.shape, vec![1; 30]);
        // Structured dtypes are refused by name.
        let mut v = npy("<f4", "(1,)", &[0; 4], 1);
        let at = v.windows(5).position(|w| w == b"'<f4'").unwrap();
        v.splice(at..at + 5, b"[('a', '<f4')]".iter().copied());
        let pre = 10;
        let hlen = (v.len() - pre - 4) as u16;
        v[8..10].copy_from_slice(&hlen.to_le_bytes());
        assert_eq!(parse_npy(&v).unwrap_err().kind(), ErrorKind::Unsupported);
    }

    /// The in-memory reader (what the calib_data fuzz target drives) gives the file reader's tensor.
    #[test]
    fn image_bytes_decode_like_the_file() {
        let img = image::RgbImage::from_fn(20, 14, |x, y| {
            image::Rgb([(x * 12) as u8, (y * 18) as u8, 7])
        });
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let path =
            std::env::temp_dir().join(format!("ipuflow-image-bytes-{}.png", std::process::id()));
        std::fs::write(&path, &png).unwrap();
        for (layout, element_type) in [
            (Layout::Nchw, ElementType::Float32),
            (Layout::Nhwc, ElementType::Uint8),
        ] {
            let r = ResolvedImage {
                input: "x".into(),
                size: (8, 6),
                layout,
                element_type,
                pre: ImagePreprocess::default(),
            };
            let from_file = r.load(&path).unwrap();
            assert_eq!(from_file.shape.len(), 4);
            assert_eq!(r.load_bytes(&png).unwrap(), from_file);
        }
        let _ = std::fs::remove_file(&path);
        let r = ResolvedImage {
            input: "x".into(),
            size: (8, 6),
            layout: Layout::Nchw,
            element_type: ElementType::Float32,
            pre: ImagePreprocess::default(),
        };
        let e = r.load_bytes(&png[..png.len() / 3]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FileRead, "{e}");
    }
}
