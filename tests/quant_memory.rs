//! Calibration memory does not grow with the number of samples: peak RSS of a calibration over 64 samples is the
//! same (within a few MB) as over 8, on EfficientNet-Lite0 (every activation observed). Linux only (it reads
//! VmHWM and resets it through /proc/self/clear_refs). Its own test binary, so no other test shares the process.

mod ort_support;

#[cfg(target_os = "linux")]
#[test]
fn peak_rss_is_flat_between_8_and_64_samples() {
    use ipuflow::onnx::Model;
    use ipuflow::quant::calibrate::calibrate;
    use ipuflow::quant::data::{FnSource, OwnedTensor};
    use ipuflow::quant::prepare::prepare;
    use ipuflow::quant::{CalibMethod, Preset, QuantConfig};

    ort_support::runtime();
    let Some(path) = ort_support::shared_model("efficientnet-lite0.onnx") else {
        return;
    };
    fn hwm_kb() -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
    fn reset_hwm() -> bool {
        std::fs::write("/proc/self/clear_refs", "5").is_ok()
    }
    let model = Model::load_file(&path).unwrap();
    let prepared = prepare(&model).unwrap();
    // MinMax, and a histogram method (2 x 2048 counters per tensor, whatever the number of samples).
    for method in [
        CalibMethod::MinMax {
            moving_average: None,
        },
        CalibMethod::MinMse,
    ] {
        let cfg = QuantConfig {
            method,
            ..QuantConfig::preset(Preset::Cpu)
        };
        let run = |n: usize| {
            // Samples are generated on the fly: the source itself holds one at a time.
            let mut k = 0usize;
            let mut src = FnSource::new(Some(n), |_inputs: &[ipuflow::runtime::TensorInfo]| {
                if k == n {
                    return Ok(None);
                }
                k += 1;
                let v: Vec<f32> = (0..3 * 224 * 224)
                    .map(|i| (((i * 31 + k * 17) % 255) as f32 - 127.0) / 128.0)
                    .collect();
                Ok(Some(vec![(
                    "input".to_string(),
                    OwnedTensor::from_f32(&[1, 3, 224, 224], &v)?,
                )]))
            });
            calibrate(&prepared, &cfg, &mut src, &mut |_, _| Ok(())).unwrap()
        };
        run(4); // warm-up: ORT's one-time allocations
        if !reset_hwm() {
            eprintln!("skipping: /proc/self/clear_refs is not writable");
            return;
        }
        let c8 = run(8);
        let h8 = hwm_kb();
        assert!(reset_hwm());
        let c64 = run(64);
        let h64 = hwm_kb();
        println!(
            "{}: peak RSS: 8 samples {} MB, 64 samples {} MB",
            method.name(),
            h8 / 1024,
            h64 / 1024
        );
        assert_eq!(c8.len(), c64.len());
        // Keeping anything per sample would cost at least one activation map (32x112x112 floats = 1.6 MB) for each of
        // the 56 extra samples; allocator noise on a loaded machine was seen at up to 30 MB. So: under 1 MB per sample.
        let per_sample_kb = h64.saturating_sub(h8) / 56;
        assert!(per_sample_kb < 1024, "{}: peak RSS grew from {h8} kB (8 samples) to {h64} kB (64 samples): {per_sample_kb} kB per sample", method.name());
    }
}
