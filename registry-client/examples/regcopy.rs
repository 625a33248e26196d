//! `regcopy`: a thin command line over the registry client, used by
//! `cargo xtask bench registry` to time berth against `skopeo copy` as a
//! separate process, the way skopeo runs.
//!
//! ```text
//! regcopy push LAYOUT NAME REFERENCE [--mount-from REPO]
//! regcopy pull REFERENCE LAYOUT NAME
//! regcopy generate LAYOUT NAME TOTAL_BYTES LAYERS
//! ```
//!
//! Reports are printed as one JSON line on stdout. `REGCOPY_LOCATIONS` names
//! a blob location cache file (see `ClientOptions::blob_location_cache`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use berth_registry_client::manifest::{Descriptor, OCI_MANIFEST};
use berth_registry_client::progress::NoProgress;
use berth_registry_client::{Client, ClientOptions, PullOptions, PushOptions};
use berth_store::reference;
use berth_store::{content::ContentStore, layout::OciLayout};
use std::process::ExitCode;
use std::sync::Arc;

const USAGE: &str = "usage: regcopy push LAYOUT NAME REFERENCE [--mount-from REPO]
       regcopy pull REFERENCE LAYOUT NAME
       regcopy generate LAYOUT NAME TOTAL_BYTES LAYERS";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("regcopy: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &[String]) -> Result<String, Box<dyn std::error::Error>> {
    let arg = |i: usize| args.get(i).map(String::as_str).ok_or(USAGE);
    match arg(0)? {
        "push" => {
            let layout = OciLayout::open(arg(1)?).await?;
            let target = reference::parse(arg(3)?)?;
            let mount_from = match (args.get(4).map(String::as_str), args.get(5)) {
                (Some("--mount-from"), Some(repo)) => vec![repo.clone()],
                (None, _) => Vec::new(),
                _ => return Err(USAGE.into()),
            };
            let client = Client::new(options())?;
            let report = client
                .push(
                    &layout,
                    arg(2)?,
                    &target,
                    &PushOptions { mount_from },
                    Arc::new(NoProgress),
                )
                .await?;
            Ok(format!(
                r#"{{"digest":"{}","up_to_date":{},"uploaded":{},"mounted":{},"present":{}}}"#,
                report.digest, report.up_to_date, report.uploaded, report.mounted, report.present
            ))
        }
        "pull" => {
            let source = reference::parse(arg(1)?)?;
            let layout = OciLayout::create(arg(2)?).await?;
            let client = Client::new(options())?;
            let report = client
                .pull(
                    &source,
                    &layout,
                    arg(3)?,
                    &PullOptions::default(),
                    Arc::new(NoProgress),
                )
                .await?;
            Ok(format!(
                r#"{{"digest":"{}","downloaded":{},"present":{}}}"#,
                report.digest, report.downloaded, report.present
            ))
        }
        "generate" => {
            let layout = OciLayout::create(arg(1)?).await?;
            let total: usize = arg(3)?.parse()?;
            let layers: usize = arg(4)?.parse()?;
            let digest = generate(&layout, arg(2)?, total, layers.max(1)).await?;
            Ok(format!(r#"{{"digest":"{digest}"}}"#))
        }
        _ => Err(USAGE.into()),
    }
}

fn options() -> ClientOptions {
    ClientOptions {
        blob_location_cache: std::env::var_os("REGCOPY_LOCATIONS").map(Into::into),
        ..ClientOptions::default()
    }
}

/// Writes an image of `layers` layers totalling about `total` bytes: even
/// layers compress well (repeated text), odd ones are random.
async fn generate(
    layout: &OciLayout,
    name: &str,
    total: usize,
    layers: usize,
) -> Result<berth_store::Digest, Box<dyn std::error::Error>> {
    let per_layer = total / layers;
    let mut descriptors = Vec::new();
    for index in 0..layers {
        let bytes = if index % 2 == 0 {
            let line = format!("layer {index}: the quick brown fox jumps over the lazy dog\n");
            line.repeat(per_layer / line.len() + 1).into_bytes()[..per_layer].to_vec()
        } else {
            random_bytes(index as u64, per_layer)
        };
        let digest = layout.put_blob(&bytes).await?;
        descriptors.push(Descriptor::new(
            "application/vnd.oci.image.layer.v1.tar",
            digest,
            bytes.len() as u64,
        ));
    }
    let diff_ids: Vec<String> = descriptors
        .iter()
        .map(|d| format!("\"{}\"", d.digest))
        .collect();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        diff_ids.join(",")
    );
    let config_digest = layout.put_blob(config.as_bytes()).await?;
    let config_descriptor = Descriptor::new(
        "application/vnd.oci.image.config.v1+json",
        config_digest,
        config.len() as u64,
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_descriptor,
        "layers": descriptors,
    });
    let bytes = serde_json::to_vec(&manifest)?;
    let digest = layout.put_blob(&bytes).await?;
    layout
        .tag(
            name,
            &Descriptor::new(OCI_MANIFEST, digest.clone(), bytes.len() as u64),
        )
        .await?;
    Ok(digest)
}

/// Pseudo-random bytes (splitmix64): incompressible and reproducible.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}
