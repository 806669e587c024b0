//! Lossless model I/O: decoding (memory-mapped), external data (read, verified and inlined at load), encoding and
//! atomic saving (optionally with external data).
//!
//! Safety rules for external data:
//! - a location must be relative and must not contain a `..` component (nor a drive or root on Windows): anything
//!   else is refused with `PathRefused` before any file is touched;
//! - `offset`/`length` are checked against the data file's real size before anything is allocated, so a malformed
//!   model cannot make us allocate more than the files on disk hold.
//!
//! Saving never writes into an existing file: it writes a temporary file in the destination's directory, fsyncs it
//! and renames it over the destination (then fsyncs the directory). On any error the temporary files are removed
//! and the destination (model and data file) is left as it was.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Component, Path, PathBuf};

use prost::Message;

use super::fs::{check_location, open_regular, resolve_external, AtomicFile};
use super::proto::{
    tensor_proto, AttributeProto, GraphProto, ModelProto, NodeProto, SparseTensorProto,
    StringStringEntryProto, TensorProto,
};
use crate::error::{Error, ErrorKind, Result};

/// The largest message protobuf can encode or decode: 2 GiB - 1.
pub(crate) const PROTOBUF_LIMIT: usize = i32::MAX as usize;

/// Offsets of tensors in an external data file are multiples of this (for tensors at least this large;
/// smaller tensors are aligned to [`SMALL_ALIGNMENT`]). 4096 is a page, so runtimes can map tensors directly.
const PAGE_ALIGNMENT: u64 = 4096;
const SMALL_ALIGNMENT: u64 = 64;

/// [`Model::load_file_lazy`] reads external tensors up to this size (shape and index tensors that inspection and
/// pre-flight look at); larger ones (weights) stay in their files.
pub const LAZY_INLINE_LIMIT: u64 = 1 << 20;

/// External data settings of an automatically externalized save (a model too big for one protobuf).
const AUTO_EXTERNAL_THRESHOLD: usize = 1024;

/// An ONNX model in memory: the decoded [`ModelProto`] with all external data inlined, plus the directory it came
/// from (against which external data was resolved).
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    proto: ModelProto,
    base_dir: Option<PathBuf>,
    /// The files it was read from: the model file (when loaded from one) and its external data files.
    sources: Vec<PathBuf>,
}

/// How [`Model::save`] writes a model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaveOptions {
    /// Store large tensors in a separate file. `None`: everything inline, unless the model would exceed
    /// protobuf's 2 GiB limit, in which case tensors go to `<file name>.data` automatically.
    pub external_data: Option<ExternalDataOptions>,
}

/// Where and which tensors [`Model::save`] stores outside the model file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalDataOptions {
    /// The data file's name, relative to the model's directory (no absolute paths, no `..`).
    pub location: String,
    /// Tensors whose `raw_data` has at least this many bytes go to the data file; smaller ones stay inline.
    pub size_threshold: usize,
}

impl Model {
    /// Loads a model file. The file is memory-mapped for decoding; external data files are resolved relative to the
    /// model's directory, verified and read into the model, so the result does not depend on any file afterwards.
    ///
    /// Errors: `FileNotFound`/`FileRead` for the model file, `ModelDecode` (naming the file and the reason) for
    /// bytes that are not an ONNX model, `PathRefused`/`ExternalData` for bad external data.
    pub fn load_file(path: &Path) -> Result<Model> {
        Model::load_file_inlining(path, u64::MAX)
    }

    /// Loads a model file for inspection: like [`Model::load_file`], with every external tensor checked (location,
    /// file, range, size) but only those of at most [`LAZY_INLINE_LIMIT`] bytes read; larger ones stay external.
    /// Inspecting or pre-flighting a model of many GiB thus needs neither its weights in memory nor protobuf's
    /// 2 GiB limit. To run such a model, create the session from its path ([`crate::runtime::Session::from_file`]).
    pub fn load_file_lazy(path: &Path) -> Result<Model> {
        Model::load_file_inlining(path, LAZY_INLINE_LIMIT)
    }

    fn load_file_inlining(path: &Path, inline_up_to: u64) -> Result<Model> {
        let (file, len) = open_regular(path)?;
        if len == 0 {
            return Err(Error::new(
                ErrorKind::ModelDecode,
                format!("cannot decode '{}': the file is empty", path.display()),
            ));
        }
        // SAFETY: the map is read-only and dropped before returning; decoding copies everything it keeps. If another
        // process truncates the file meanwhile we may get SIGBUS, the accepted caveat of every mmap-based loader.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io("map", path, e))?;
        let proto = decode_model(&map, &format!("'{}'", path.display()))?;
        drop(map);
        let base_dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut model = Model {
            proto,
            base_dir: Some(base_dir),
            sources: vec![path.to_path_buf()],
        };
        model
            .inline_external_data(inline_up_to)
            .map_err(|e| e.context(format!("loading '{}'", path.display())))?;
        Ok(model)
    }

    /// Decodes a model from bytes. External data (if the model has any) is resolved against `base_dir`; a model
    /// with external data and no `base_dir` is an `ExternalData` error.
    pub fn from_bytes(bytes: &[u8], base_dir: Option<&Path>) -> Result<Model> {
        if bytes.is_empty() {
            return Err(Error::new(
                ErrorKind::ModelDecode,
                "cannot decode the model: no bytes given",
            ));
        }
        let proto = decode_model(bytes, "the model bytes")?;
        let mut model = Model {
            proto,
            base_dir: base_dir.map(Path::to_path_buf),
            sources: Vec::new(),
        };
        model.inline_external_data(u64::MAX)?;
        Ok(model)
    }

    /// Wraps a message built in memory (no base directory; external data references are kept as they are).
    pub fn from_proto(proto: ModelProto) -> Model {
        Model {
            proto,
            base_dir: None,
            sources: Vec::new(),
        }
    }

    pub fn proto(&self) -> &ModelProto {
        &self.proto
    }

    pub fn proto_mut(&mut self) -> &mut ModelProto {
        &mut self.proto
    }

    pub fn into_proto(self) -> ModelProto {
        self.proto
    }

    /// The directory external data was resolved against (the model file's directory for [`Model::load_file`]).
    pub fn base_dir(&self) -> Option<&Path> {
        self.base_dir.as_deref()
    }

    /// The files the model was read from: the model file (for [`Model::load_file`]) and every external data file
    /// (resolved). A writer can refuse to replace them (see [`super::fs::refuse_same_file`]).
    pub fn source_files(&self) -> &[PathBuf] {
        &self.sources
    }

    /// The model encoded as one protobuf message. Fails (`Unsupported`) if it would exceed protobuf's 2 GiB limit:
    /// save such a model with external data instead.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        encode_model(&self.proto, PROTOBUF_LIMIT)
    }

    /// Saves the model atomically to `path` (see the module docs), optionally with external data.
    pub fn save(&self, path: &Path, options: &SaveOptions) -> Result<()> {
        self.save_with_limit(path, options, PROTOBUF_LIMIT, &|| false)
    }

    /// [`Model::save`] that gives up when `stop()` returns true: it is asked before each externalized tensor and
    /// last just before the files are renamed into place, so a stop leaves no file and the destination untouched.
    ///
    /// Errors: those of [`Model::save`]; `Cancelled` when stopped.
    pub fn save_cancellable(
        &self,
        path: &Path,
        options: &SaveOptions,
        stop: &dyn Fn() -> bool,
    ) -> Result<()> {
        self.save_with_limit(path, options, PROTOBUF_LIMIT, stop)
    }

    /// [`Model::save`] with the size above which a model is externalized automatically (tests use a small one).
    fn save_with_limit(
        &self,
        path: &Path,
        options: &SaveOptions,
        limit: usize,
        stop: &dyn Fn() -> bool,
    ) -> Result<()> {
        let stopped = || {
            if stop() {
                Err(Error::new(
                    ErrorKind::Cancelled,
                    format!("saving '{}' cancelled: nothing was written", path.display()),
                ))
            } else {
                Ok(())
            }
        };
        let file_name = path.file_name().ok_or_else(|| {
            Error::invalid_argument(format!(
                "cannot save to '{}': not a file path",
                path.display()
            ))
        })?;
        let Some(ext) = self.external_choice(path, file_name, options, limit)? else {
            let tmp = staged(path, &encode_model(&self.proto, limit)?)?;
            stopped()?;
            return tmp.commit();
        };
        let data_path = external_target(path, file_name, &ext)?;
        let mut proto = self.proto.clone();
        let data = move_out_tensors(&mut proto, &data_path, &ext, &stopped)?;
        let bytes = encode_model(&proto, limit)?;
        drop(proto);
        let tmp = staged(path, &bytes)?;
        stopped()?;
        if let Some(data) = data {
            data.commit()?;
        }
        tmp.commit()
    }

    /// The external-data layout to save with: the caller's, or an automatic one (`<file>.data`) when the model
    /// would not fit one protobuf; `None` to save a single file.
    fn external_choice(
        &self,
        path: &Path,
        file_name: &std::ffi::OsStr,
        options: &SaveOptions,
        limit: usize,
    ) -> Result<Option<ExternalDataOptions>> {
        Ok(match &options.external_data {
            Some(ext) => Some(ext.clone()),
            None if self.proto.encoded_len() > limit => {
                let name = file_name.to_str().ok_or_else(|| {
                    Error::invalid_argument(format!(
                        "cannot save '{}' with automatic external data: the file name is not UTF-8",
                        path.display()
                    ))
                })?;
                Some(ExternalDataOptions {
                    location: format!("{name}.data"),
                    size_threshold: AUTO_EXTERNAL_THRESHOLD,
                })
            }
            None => None,
        })
    }
}

/// A model file written and synced under a temporary name, committed by the caller.
fn staged(path: &Path, bytes: &[u8]) -> Result<AtomicFile> {
    let mut tmp = AtomicFile::create(path)?;
    tmp.write_all(bytes)?;
    tmp.sync()?;
    Ok(tmp)
}

/// The external data file's path beside `path`, refusing an empty or escaping location and the model file itself.
fn external_target(
    path: &Path,
    file_name: &std::ffi::OsStr,
    ext: &ExternalDataOptions,
) -> Result<PathBuf> {
    // An empty location is the caller's argument, not a defect of the model (as it is when loading).
    if ext.location.is_empty() {
        return Err(Error::invalid_argument(
            "external data file location is empty",
        ));
    }
    check_location(&ext.location, "external data file")?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let normalized: PathBuf = Path::new(&ext.location)
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    if normalized.as_os_str() == file_name {
        return Err(Error::invalid_argument(format!(
            "cannot save '{}': the external data location '{}' is the model file itself",
            path.display(),
            ext.location
        )));
    }
    Ok(dir.join(&ext.location))
}

/// Moves every inline tensor of at least the threshold into the (staged, uncommitted) data file at `data_path`,
/// aligned, and points the tensors at it. `None` when no tensor qualified (no data file is created).
fn move_out_tensors(
    proto: &mut ModelProto,
    data_path: &Path,
    ext: &ExternalDataOptions,
    stopped: &dyn Fn() -> Result<()>,
) -> Result<Option<AtomicFile>> {
    let mut data: Option<(AtomicFile, BufWriter<File>, u64)> = None;
    visit_tensors_mut(proto, &mut |t: &mut TensorProto| {
        let Some(raw) = t.raw_data.as_ref() else {
            return Ok(());
        };
        if raw.len() < ext.size_threshold || is_external(t) {
            return Ok(());
        }
        stopped()?;
        if data.is_none() {
            let tmp = AtomicFile::create(data_path)?;
            let writer = BufWriter::with_capacity(
                1 << 20,
                tmp.file().try_clone().map_err(|e| tmp.write_error(e))?,
            );
            data = Some((tmp, writer, 0));
        }
        let (tmp, writer, pos) = data.as_mut().expect("data file created above");
        let len = raw.len() as u64;
        let align = if len >= PAGE_ALIGNMENT {
            PAGE_ALIGNMENT
        } else {
            SMALL_ALIGNMENT
        };
        let offset = pos.div_ceil(align) * align;
        let pad = vec![0u8; (offset - *pos) as usize];
        writer
            .write_all(&pad)
            .and_then(|_| writer.write_all(raw))
            .map_err(|e| tmp.write_error(e))?;
        *pos = offset + len;
        t.raw_data = None;
        t.external_data = vec![
            entry("location", &ext.location),
            entry("offset", &offset.to_string()),
            entry("length", &len.to_string()),
        ];
        t.data_location = Some(tensor_proto::DataLocation::External as i32);
        Ok(())
    })?;
    Ok(match data {
        Some((tmp, mut writer, _)) => {
            writer.flush().map_err(|e| tmp.write_error(e))?;
            drop(writer);
            Some(tmp)
        }
        None => None,
    })
}

impl Model {
    /// Reads every external tensor of at most `inline_up_to` bytes into `raw_data` (checking location, file, range
    /// and size of all of them), so the model (when nothing was left out)
    /// no longer refers to any file.
    fn inline_external_data(&mut self, inline_up_to: u64) -> Result<()> {
        let base = self.base_dir.clone();
        let mut files: HashMap<String, DataFile> = HashMap::new();
        let mut sources = Vec::new();
        let r = visit_tensors_mut(&mut self.proto, &mut |t: &mut TensorProto| {
            if !is_external(t) {
                return Ok(());
            }
            let name = t.name.clone().unwrap_or_default();
            let r = ExternalRef::parse(t, &name)?;
            let Some(base) = base.as_deref() else {
                return Err(Error::new(
                    ErrorKind::ExternalData,
                    format!(
                        "tensor '{name}' stores its data in external file '{}', but the model was given as bytes \
                         without a base directory to resolve it against",
                        r.location
                    ),
                ));
            };
            if !files.contains_key(&r.location) {
                let what = format!("tensor '{name}': external data");
                let path = resolve_external(base, &r.location, &what)?;
                let f = DataFile::open(&path, &name, &r.location)?;
                sources.push(path);
                files.insert(r.location.clone(), f);
            }
            let file = &files[&r.location];
            let size = file.len() as u64;
            let end = match r.length {
                Some(len) => r.offset.checked_add(len),
                None => Some(size.max(r.offset)),
            };
            let end = match end {
                Some(end) if end <= size && r.offset <= size => end,
                _ => {
                    return Err(Error::new(
                        ErrorKind::ExternalData,
                        format!(
                            "tensor '{name}' needs {} bytes at offset {} of external data file '{}', but the file is \
                             only {size} bytes",
                            r.length.map_or("its".to_string(), |l| l.to_string()),
                            r.offset,
                            r.location
                        ),
                    ))
                }
            };
            let len = end - r.offset;
            if let Some(expected) = expected_raw_size(t) {
                if expected != len {
                    return Err(Error::new(
                        ErrorKind::ExternalData,
                        format!(
                            "tensor '{name}' has {len} bytes in external data file '{}' but its type and shape need \
                             {expected}",
                            r.location
                        ),
                    ));
                }
            }
            if len > inline_up_to {
                return Ok(());
            }
            t.raw_data = Some(file.bytes()[r.offset as usize..end as usize].to_vec());
            t.external_data.clear();
            t.data_location = None;
            Ok(())
        });
        self.sources.extend(sources);
        r
    }
}

/// Decodes a ModelProto, mapping prost's error to `ModelDecode` naming `what`.
fn decode_model(bytes: &[u8], what: &str) -> Result<ModelProto> {
    let proto = ModelProto::decode(bytes).map_err(|e| {
        Error::new(
            ErrorKind::ModelDecode,
            format!("cannot decode {what} as an ONNX model: {e}"),
        )
    })?;
    // Any byte string that happens to be well-formed protobuf decodes (unknown fields are skipped); an ONNX model
    // always has an IR version or a graph.
    if proto.ir_version.is_none() && proto.graph.is_none() {
        return Err(Error::new(
            ErrorKind::ModelDecode,
            format!(
                "cannot decode {what} as an ONNX model: it has neither an IR version nor a graph"
            ),
        ));
    }
    Ok(proto)
}

fn encode_model(proto: &ModelProto, limit: usize) -> Result<Vec<u8>> {
    let len = proto.encoded_len();
    if len > limit {
        return Err(Error::unsupported(format!(
            "the model encodes to {len} bytes, over protobuf's {limit}-byte limit; save it with external data"
        )));
    }
    let mut out = Vec::new();
    out.try_reserve_exact(len).map_err(|_| {
        Error::new(
            ErrorKind::OutOfMemory,
            format!("cannot allocate {len} bytes to encode the model"),
        )
    })?;
    proto
        .encode(&mut out)
        .map_err(|e| Error::internal(format!("encoding the model failed: {e}")))?;
    Ok(out)
}

fn entry(key: &str, value: &str) -> StringStringEntryProto {
    StringStringEntryProto {
        key: Some(key.to_string()),
        value: Some(value.to_string()),
    }
}

fn is_external(t: &TensorProto) -> bool {
    t.data_location == Some(tensor_proto::DataLocation::External as i32)
}

/// The raw byte size a tensor's type and shape call for, when both are known and fixed-size.
pub(crate) fn expected_raw_size(t: &TensorProto) -> Option<u64> {
    let dt = super::DataType::from_onnx(t.data_type?)?;
    let mut n: u64 = 1;
    for &d in &t.dims {
        n = n.checked_mul(u64::try_from(d).ok()?)?;
    }
    dt.raw_size(n)
}

/// The parsed `external_data` entries of a tensor.
struct ExternalRef {
    location: String,
    offset: u64,
    length: Option<u64>,
}

impl ExternalRef {
    fn parse(t: &TensorProto, name: &str) -> Result<ExternalRef> {
        let bad =
            |msg: String| Error::new(ErrorKind::ExternalData, format!("tensor '{name}': {msg}"));
        let (mut location, mut offset, mut length) = (None, None, None);
        for e in &t.external_data {
            let value = e.value.as_deref().unwrap_or("");
            let number = |key: &str| {
                value.trim().parse::<u64>().map_err(|_| {
                    bad(format!(
                        "external data {key} '{value}' is not a non-negative integer"
                    ))
                })
            };
            match e.key.as_deref().unwrap_or("") {
                "location" => location = Some(value.to_string()),
                "offset" => offset = Some(number("offset")?),
                "length" => length = Some(number("length")?),
                _ => {} // checksum, basepath: not used
            }
        }
        let location = location.ok_or_else(|| {
            bad("data_location is EXTERNAL but external_data has no 'location'".into())
        })?;
        check_location(&location, &format!("tensor '{name}': external data"))?;
        Ok(ExternalRef {
            location,
            offset: offset.unwrap_or(0),
            length,
        })
    }
}

/// A mapped (or, when empty, absent) external data file.
struct DataFile {
    map: Option<memmap2::Mmap>,
}

impl DataFile {
    fn open(path: &Path, tensor: &str, location: &str) -> Result<DataFile> {
        let err = |kind: ErrorKind, what: String| {
            Error::new(
                kind,
                format!(
                    "tensor '{tensor}': external data file '{location}' ({}) {what}",
                    path.display()
                ),
            )
        };
        let (file, len) = open_regular(path).map_err(|e| match e.kind() {
            ErrorKind::FileNotFound => err(ErrorKind::ExternalData, "does not exist".into()),
            _ => err(
                ErrorKind::ExternalData,
                format!("cannot be read: {}", e.message()),
            ),
        })?;
        if len == 0 {
            return Ok(DataFile { map: None });
        }
        // SAFETY: read-only map, only read while inlining (see Model::load_file).
        let map = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| err(ErrorKind::ExternalData, format!("cannot be mapped: {e}")))?;
        Ok(DataFile { map: Some(map) })
    }
    fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
    fn len(&self) -> usize {
        self.bytes().len()
    }
}

/// Calls `f` on every TensorProto of the model: initializers, sparse initializers, tensor attributes (also in
/// subgraphs, training graphs and function bodies, and function attribute defaults).
pub(crate) fn visit_tensors_mut(
    model: &mut ModelProto,
    f: &mut dyn FnMut(&mut TensorProto) -> Result<()>,
) -> Result<()> {
    if let Some(g) = model.graph.as_mut() {
        visit_graph(g, f)?;
    }
    for ti in &mut model.training_info {
        for g in [ti.initialization.as_mut(), ti.algorithm.as_mut()]
            .into_iter()
            .flatten()
        {
            visit_graph(g, f)?;
        }
    }
    for func in &mut model.functions {
        visit_nodes(&mut func.node, f)?;
        for a in &mut func.attribute_proto {
            visit_attribute(a, f)?;
        }
    }
    Ok(())
}

fn visit_graph(
    g: &mut GraphProto,
    f: &mut dyn FnMut(&mut TensorProto) -> Result<()>,
) -> Result<()> {
    for t in &mut g.initializer {
        f(t)?;
    }
    for s in &mut g.sparse_initializer {
        visit_sparse(s, f)?;
    }
    visit_nodes(&mut g.node, f)
}

fn visit_nodes(
    nodes: &mut [NodeProto],
    f: &mut dyn FnMut(&mut TensorProto) -> Result<()>,
) -> Result<()> {
    for n in nodes {
        for a in &mut n.attribute {
            visit_attribute(a, f)?;
        }
    }
    Ok(())
}

fn visit_attribute(
    a: &mut AttributeProto,
    f: &mut dyn FnMut(&mut TensorProto) -> Result<()>,
) -> Result<()> {
    if let Some(t) = a.t.as_mut() {
        f(t)?;
    }
    for t in &mut a.tensors {
        f(t)?;
    }
    if let Some(s) = a.sparse_tensor.as_mut() {
        visit_sparse(s, f)?;
    }
    for s in &mut a.sparse_tensors {
        visit_sparse(s, f)?;
    }
    if let Some(g) = a.g.as_mut() {
        visit_graph(g, f)?;
    }
    for g in &mut a.graphs {
        visit_graph(g, f)?;
    }
    Ok(())
}

fn visit_sparse(
    s: &mut SparseTensorProto,
    f: &mut dyn FnMut(&mut TensorProto) -> Result<()>,
) -> Result<()> {
    for t in [s.values.as_mut(), s.indices.as_mut()]
        .into_iter()
        .flatten()
    {
        f(t)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::{GraphProto, TensorProto};
    use std::fs;

    fn model_with(sizes: &[usize]) -> Model {
        let initializer = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| TensorProto {
                name: Some(format!("t{i}")),
                dims: vec![n as i64],
                data_type: Some(tensor_proto::DataType::Uint8 as i32),
                raw_data: Some((0..n).map(|b| (b * 7 + i) as u8).collect()),
                ..Default::default()
            })
            .collect();
        Model::from_proto(ModelProto {
            ir_version: Some(10),
            graph: Some(GraphProto {
                name: Some("g".into()),
                initializer,
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn oversized_models_are_externalized_automatically() {
        let dir = std::env::temp_dir().join(format!("ipuflow-io-auto-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let m = model_with(&[5000, 10, 3000]);
        let path = dir.join("big.onnx");
        // A limit below the model's size: to_bytes-like encoding fails, save goes external on its own.
        assert_eq!(
            encode_model(m.proto(), 4000).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        m.save_with_limit(&path, &SaveOptions::default(), 4000, &|| false)
            .unwrap();
        let data = fs::read(dir.join("big.onnx.data")).unwrap();
        // 5000 bytes at 0; 3000 bytes (under a page: 64-byte alignment) at 5056; the 10-byte tensor stays inline.
        assert_eq!(data.len(), 5056 + 3000);
        let saved = ModelProto::decode(&*fs::read(&path).unwrap()).unwrap();
        let ext: Vec<_> = saved
            .graph
            .as_ref()
            .unwrap()
            .initializer
            .iter()
            .map(is_external)
            .collect();
        assert_eq!(ext, [true, false, true]);
        assert_eq!(Model::load_file(&path).unwrap().proto(), m.proto());
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 2, "{leftovers:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn locations_are_checked() {
        for ok in ["w.bin", "data/w.bin", "./w.bin", "a..b"] {
            check_location(ok, "x").unwrap();
        }
        for bad in [
            "/etc/passwd",
            "../w.bin",
            "data/../../w",
            "..\\w.bin",
            "\\\\server\\share",
            "C:\\w.bin",
            "C:w",
        ] {
            assert_eq!(
                check_location(bad, "x").unwrap_err().kind(),
                ErrorKind::PathRefused,
                "{bad}"
            );
        }
    }
}
