//! Quantizes a model on a folder of images and saves it; prints the time of each stage.
//!
//!   cargo run --release --example quantize -- MODEL.onnx PRESET IMAGES_DIR OUT.onnx [--report REPORT.json]
//!       [--method minmax|percentile|entropy|minmse|nonoverflow] [--percentile P]
//!       [--sensitivity] [--target-sqnr DB] [--max-drop D] [--min-npu-coverage F]
//!
//! Environment switches override the preset's defaults for sweeps: IPUFLOW_WEIGHT_MSE, IPUFLOW_CLE,
//! IPUFLOW_CLIP6_RELU, IPUFLOW_BIAS_CORRECTION, IPUFLOW_LEARNED_ROUNDING, IPUFLOW_ROUNDING_SCALE_SEARCH,
//! IPUFLOW_ROUNDING_ACT_ORDER,
//! IPUFLOW_ROUNDING_BIAS_FIRST (1 on, 0 off); IPUFLOW_BIAS_TYPE (int8 or int32).
//!
//! PRESET is XINT8, A8W8, A16W8 or CPU. IMAGES_DIR may instead hold .npy samples (one per file). Images are preprocessed as in the anchors protocol (RGB, shorter side to
//! 256/224 of the input size, centre crop, (x - 127) / 128, layout from the model). Used by bench/quantize/.
use std::path::PathBuf;
use std::time::Instant;

use ipuflow::onnx::{Model, SaveOptions};
use ipuflow::quant::data::{CalibrationSource, ImageFolder, ImagePreprocess, NpyDir};
use ipuflow::quant::{quantize, CalibMethod, Hooks, Preset, Progress, QuantConfig, WeightRange};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!("usage: quantize MODEL.onnx PRESET IMAGES_DIR OUT.onnx [--report REPORT.json]");
        std::process::exit(2);
    }
    let t0 = Instant::now();
    let run = || -> ipuflow::Result<()> {
        ipuflow::runtime::Runtime::load(None)?;
        let model = Model::load_file(&PathBuf::from(&args[0]))?;
        let mut config = QuantConfig::preset(Preset::parse(&args[1])?);
        // Switches for bench/quantize/accuracy.py's sweeps (unset: the preset's defaults).
        let flag = |k: &str| std::env::var(k).ok().map(|v| v == "1");
        if let Some(on) = flag("IPUFLOW_WEIGHT_MSE") {
            config.weight_range = if on {
                WeightRange::MinMse
            } else {
                WeightRange::MinMax
            };
        }
        if let Some(on) = flag("IPUFLOW_CLE") {
            config.equalize = on;
        }
        if let Some(on) = flag("IPUFLOW_CLIP6_RELU") {
            config.replace_clip6_relu = on;
        }
        if let Some(on) = flag("IPUFLOW_BIAS_CORRECTION") {
            config.bias_correction = on;
        }
        if let Ok(t) = std::env::var("IPUFLOW_BIAS_TYPE") {
            config.bias_type = ipuflow::quant::BiasType::parse(&t)?;
        }
        if let Some(on) = flag("IPUFLOW_OUTPUT_AWARE") {
            config.output_aware = on;
        }
        if let Some(on) = flag("IPUFLOW_NPU_RESCALE") {
            config.npu_rescale = on;
        }
        if let Some(on) = flag("IPUFLOW_SIGMOID_HARD") {
            config.sigmoid_to_hard_sigmoid = on;
        }
        if let Some(on) = flag("IPUFLOW_LEARNED_ROUNDING") {
            config.learned_rounding = on;
        }
        if let Some(on) = flag("IPUFLOW_ROUNDING_SCALE_SEARCH") {
            config.rounding.scale_search = on;
        }
        if let Some(on) = flag("IPUFLOW_ROUNDING_ACT_ORDER") {
            config.rounding.act_order = on;
        }
        if let Some(on) = flag("IPUFLOW_ROUNDING_BIAS_FIRST") {
            config.rounding.bias_first = on;
        }
        let opt = |name: &str| {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1))
        };
        let percentile = opt("--percentile").map_or(CalibMethod::DEFAULT_PERCENTILE, |p| {
            p.parse().expect("--percentile takes a number")
        });
        if let Some(m) = opt("--method") {
            config.method = CalibMethod::parse(m, percentile)?;
        }
        config.calib_cache = opt("--calib-cache").map(PathBuf::from);
        // Mixed precision (bench/quantize/accuracy.py --arg=--target-sqnr --arg=20).
        let num = |name: &str| opt(name).map(|v| v.parse::<f32>().expect("a number"));
        config.mixed.target_sqnr_db = num("--target-sqnr");
        config.mixed.max_agreement_drop = num("--max-drop");
        config.mixed.min_npu_coverage = num("--min-npu-coverage");
        config.mixed.sensitivity = args.iter().any(|a| a == "--sensitivity");
        let dir = PathBuf::from(&args[2]);
        let npy = std::fs::read_dir(&dir)
            .map_err(|e| ipuflow::Error::io("read", &dir, e))?
            .any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "npy")));
        let mut data: Box<dyn CalibrationSource> = if npy {
            Box::new(NpyDir::open(&dir)?)
        } else {
            Box::new(ImageFolder::open(&dir, ImagePreprocess::default())?)
        };
        let mut last = Instant::now();
        let mut progress = |p: &Progress| {
            if p.total.is_some_and(|t| p.done == t) || p.done == 0 && p.total == Some(1) {
                eprintln!(
                    "{:?} {}/{:?} at {:.3} s (+{:.3})",
                    p.stage,
                    p.done,
                    p.total,
                    t0.elapsed().as_secs_f64(),
                    last.elapsed().as_secs_f64()
                );
                last = Instant::now();
            }
            true
        };
        let (q, report) = quantize(
            &model,
            &config,
            data.as_mut(),
            Hooks {
                progress: Some(&mut progress),
                cancel: None,
            },
        )?;
        q.save(&PathBuf::from(&args[3]), &SaveOptions::default())?;
        if args.get(4).map(String::as_str) == Some("--report") {
            if let Some(p) = args.get(5) {
                std::fs::write(p, report.to_json())
                    .map_err(|e| ipuflow::Error::io("write", p.as_ref(), e))?;
            }
        }
        if let Some(s) = &report.sensitivity {
            eprintln!(
                "sensitivity ({:.1} s): {}",
                s.seconds,
                s.worst(5).join("; ")
            );
        }
        if let Some(m) = &report.mixed_precision {
            eprintln!(
                "mixed precision ({:.1} s, {} steps): met {} result {:?} coverage {:.3} (from {:.3})",
                m.seconds,
                m.steps.len(),
                m.met,
                m.result,
                m.result_npu_coverage,
                m.baseline_npu_coverage
            );
        }
        let (nq, nf) = report.counts();
        eprintln!(
            "quantized {nq} nodes, {nf} left float; total {:.3} s",
            t0.elapsed().as_secs_f64()
        );
        Ok(())
    };
    if let Err(e) = run() {
        eprintln!("error ({:?}): {e}", e.kind());
        std::process::exit(1);
    }
}
