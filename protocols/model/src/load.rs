//! Loading and saving a model directory (`model.json` + safetensors weights).

use std::collections::HashSet;
use std::path::Path;

use safetensors::SafeTensors;

use super::error::{ModelError, Result};
use super::layer::{Conv2d, Dense, Layer, Pool2d};
use super::manifest::{Manifest, RawLayer, FORMAT};
use super::shape::{checked_elements, MAX_LAYERS, MAX_MANIFEST_BYTES};
use super::tensors::{self, OwnedTensor};
use super::Model;

/// Manifest file name inside a model directory.
pub const MANIFEST_FILE: &str = "model.json";

impl Model {
    /// Loads `dir/model.json` and the weight file it names. `dir` may also be the manifest
    /// path itself.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let path = dir.as_ref();
        let manifest_path = if path.is_dir() {
            path.join(MANIFEST_FILE)
        } else {
            path.to_path_buf()
        };
        let bytes = tensors::read_limited(&manifest_path, MAX_MANIFEST_BYTES)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| ModelError::Manifest("manifest is not UTF-8".into()))?;
        let manifest = Manifest::from_json(&text)?;
        let base = manifest_path.parent().unwrap_or(Path::new("."));
        let weights = tensors::read_file(&base.join(&manifest.weights))?;
        Self::from_parts(&manifest, &weights)
    }

    /// Builds a model from a parsed manifest and the bytes of its weight file.
    pub fn from_parts(manifest: &Manifest, weights: &[u8]) -> Result<Self> {
        if manifest.layers.len() > MAX_LAYERS {
            return Err(ModelError::Manifest(format!(
                "{} layers exceed the limit of {MAX_LAYERS}",
                manifest.layers.len()
            )));
        }
        checked_elements("input_shape", &manifest.input_shape)?;
        let st = tensors::parse(weights)?;
        let mut names = HashSet::new();
        let layers = manifest
            .layers
            .iter()
            .enumerate()
            .map(|(i, raw)| layer_from_raw(i, raw, &st, &mut names))
            .collect::<Result<Vec<_>>>()?;
        Model::new(
            manifest.name.clone(),
            manifest.description.clone(),
            manifest.input_shape.clone(),
            manifest.fixed_point,
            layers,
        )
    }

    /// Writes `dir/model.json` and `dir/model.safetensors`.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
        let (manifest, tensors) = self.to_parts();
        let bytes = tensors::serialize(&tensors)?;
        let wpath = dir.join(&manifest.weights);
        std::fs::write(&wpath, bytes).map_err(|e| ModelError::io(&wpath, e))?;
        let mpath = dir.join(MANIFEST_FILE);
        std::fs::write(&mpath, manifest.to_json()).map_err(|e| ModelError::io(&mpath, e))
    }

    /// The manifest and the named tensors of this model.
    pub fn to_parts(&self) -> (Manifest, Vec<(String, OwnedTensor)>) {
        let mut tensors = Vec::new();
        let layers = self
            .layers
            .iter()
            .map(|l| raw_from_layer(l, &mut tensors))
            .collect();
        let manifest = Manifest {
            format: FORMAT.to_string(),
            name: self.name.clone(),
            description: self.description.clone(),
            input_shape: self.input_shape.clone(),
            fixed_point: self.fixed_point,
            weights: "model.safetensors".to_string(),
            layers,
        };
        (manifest, tensors)
    }
}

fn layer_from_raw(
    index: usize,
    raw: &RawLayer,
    st: &SafeTensors<'_>,
    names: &mut HashSet<String>,
) -> Result<Layer> {
    let layer = match raw.kind.as_str() {
        "dense" => {
            let name = unique_name(index, raw, names)?;
            let in_features = raw.need(index, "in_features", raw.in_features)?;
            let out_features = raw.need(index, "out_features", raw.out_features)?;
            let wname = raw.need_str(index, "weight", &raw.weight)?;
            checked_elements(&name, &[out_features, in_features])?;
            let weight = tensors::f32_tensor(st, wname, &[out_features, in_features])?;
            let bias = bias(st, raw, out_features)?;
            Layer::Dense(Dense {
                name,
                in_features,
                out_features,
                weight,
                bias,
            })
        }
        "conv2d" => {
            let name = unique_name(index, raw, names)?;
            let in_channels = raw.need(index, "in_channels", raw.in_channels)?;
            let out_channels = raw.need(index, "out_channels", raw.out_channels)?;
            let kernel = raw.need(index, "kernel", raw.kernel)?;
            let dims = [out_channels, in_channels, kernel[0], kernel[1]];
            checked_elements(&name, &dims)?;
            let wname = raw.need_str(index, "weight", &raw.weight)?;
            let weight = tensors::f32_tensor(st, wname, &dims)?;
            let bias = bias(st, raw, out_channels)?;
            Layer::Conv2d(Conv2d {
                name,
                in_channels,
                out_channels,
                kernel,
                stride: raw.stride.unwrap_or([1, 1]),
                padding: raw.padding.unwrap_or([0, 0]),
                weight,
                bias,
            })
        }
        "avgpool2d" | "maxpool2d" => {
            let kernel = raw.need(index, "kernel", raw.kernel)?;
            let pool = Pool2d {
                kernel,
                stride: raw.stride.unwrap_or(kernel),
            };
            if raw.kind == "avgpool2d" {
                Layer::AvgPool2d(pool)
            } else {
                Layer::MaxPool2d(pool)
            }
        }
        "relu" => Layer::Relu,
        "flatten" => Layer::Flatten,
        other => {
            return Err(ModelError::UnknownLayer {
                index,
                kind: other.to_string(),
            })
        }
    };
    Ok(layer)
}

fn unique_name(index: usize, raw: &RawLayer, names: &mut HashSet<String>) -> Result<String> {
    let name = raw.need_str(index, "name", &raw.name)?.to_string();
    if name.is_empty() || !names.insert(name.clone()) {
        return Err(ModelError::Manifest(format!(
            "layer {index}: name {name:?} is empty or not unique"
        )));
    }
    Ok(name)
}

fn bias(st: &SafeTensors<'_>, raw: &RawLayer, len: usize) -> Result<Vec<f32>> {
    match &raw.bias {
        Some(name) => tensors::f32_tensor(st, name, &[len]),
        None => Ok(vec![0.0; len]),
    }
}

fn raw_from_layer(layer: &Layer, tensors: &mut Vec<(String, OwnedTensor)>) -> RawLayer {
    let mut raw = RawLayer {
        kind: layer.kind().to_string(),
        ..RawLayer::default()
    };
    match layer {
        Layer::Dense(d) => {
            raw.name = Some(d.name.clone());
            raw.in_features = Some(d.in_features);
            raw.out_features = Some(d.out_features);
            push_weights(
                &mut raw,
                tensors,
                &d.name,
                d.weight_shape(),
                &d.weight,
                &d.bias,
            );
        }
        Layer::Conv2d(c) => {
            raw.name = Some(c.name.clone());
            raw.in_channels = Some(c.in_channels);
            raw.out_channels = Some(c.out_channels);
            raw.kernel = Some(c.kernel);
            raw.stride = Some(c.stride);
            raw.padding = Some(c.padding);
            push_weights(
                &mut raw,
                tensors,
                &c.name,
                c.weight_shape(),
                &c.weight,
                &c.bias,
            );
        }
        Layer::AvgPool2d(p) | Layer::MaxPool2d(p) => {
            raw.kernel = Some(p.kernel);
            raw.stride = Some(p.stride);
        }
        Layer::Relu | Layer::Flatten => {}
    }
    raw
}

fn push_weights(
    raw: &mut RawLayer,
    tensors: &mut Vec<(String, OwnedTensor)>,
    name: &str,
    wshape: Vec<usize>,
    weight: &[f32],
    bias: &[f32],
) {
    let (wname, bname) = (format!("{name}.weight"), format!("{name}.bias"));
    tensors.push((wname.clone(), OwnedTensor::f32(wshape, weight)));
    tensors.push((bname.clone(), OwnedTensor::f32(vec![bias.len()], bias)));
    raw.weight = Some(wname);
    raw.bias = Some(bname);
}

impl Dense {
    /// `[out_features, in_features]`.
    pub fn weight_shape(&self) -> Vec<usize> {
        vec![self.out_features, self.in_features]
    }
}

impl Conv2d {
    /// `[out_channels, in_channels, kh, kw]`.
    pub fn weight_shape(&self) -> Vec<usize> {
        vec![
            self.out_channels,
            self.in_channels,
            self.kernel[0],
            self.kernel[1],
        ]
    }
}
