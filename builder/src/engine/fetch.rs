//! `ADD <url>`: downloads http(s) sources, as BuildKit does. The file keeps
//! the name of the URL path's last segment, gets mode 0600 and the server's
//! Last-Modified time, and is never extracted.

use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A downloaded URL source.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// The URL as written in the Dockerfile.
    pub url: String,
    /// The file name in the image.
    pub name: String,
    /// Where the content was written.
    pub path: PathBuf,
    /// `sha256:<hex>` of the content.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// The server's Last-Modified time, seconds since the epoch.
    pub mtime: Option<i64>,
}

/// Why a URL source could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The connection or transfer failed.
    #[error("downloading {url}: {message}")]
    Transfer {
        /// The URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// The server answered with a status other than 2xx.
    #[error("downloading {url}: the server answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The content does not match `--checksum`.
    #[error("checksum mismatch for {url}: --checksum is {expected} but the content is {actual}")]
    Checksum {
        /// The URL.
        url: String,
        /// The digest `--checksum` gives.
        expected: String,
        /// The digest of what was downloaded.
        actual: String,
    },
    /// `--checksum` is not `sha256:<64 hex digits>`.
    #[error("invalid --checksum '{0}': expected sha256:<64 lowercase hex digits>")]
    BadChecksum(String),
    /// Writing the downloaded file failed.
    #[error("writing the download to {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Whether a source is an http(s) URL.
pub fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// Checks a `--checksum` value and returns it normalised.
pub fn parse_checksum(text: &str) -> Result<String, FetchError> {
    let hex = text
        .strip_prefix("sha256:")
        .ok_or_else(|| FetchError::BadChecksum(text.to_string()))?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FetchError::BadChecksum(text.to_string()));
    }
    Ok(format!("sha256:{}", hex.to_ascii_lowercase()))
}

/// The file name a URL source gets: the last segment of its path, or
/// `__unnamed__` when the path has none (BuildKit's choice).
pub fn file_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    match path
        .rsplit('/')
        .find(|s| !s.is_empty() && *s != "." && *s != "..")
    {
        Some(name) => name.to_string(),
        None => "__unnamed__".to_string(),
    }
}

/// Downloads `url` into `dir`, verifying `checksum` (normalised) when given,
/// calling `on_bytes(received, content_length)` as data arrives. On a
/// mismatch nothing is kept.
pub fn download(
    url: &str,
    dir: &Path,
    checksum: Option<&str>,
    on_bytes: &mut dyn FnMut(u64, Option<u64>),
) -> Result<Downloaded, FetchError> {
    download_limited(url, dir, checksum, None, on_bytes)
}

/// [`download`], failing once more than `max_bytes` arrive (a server that
/// never ends its body must not fill the disk).
pub fn download_limited(
    url: &str,
    dir: &Path,
    checksum: Option<&str>,
    max_bytes: Option<u64>,
    on_bytes: &mut dyn FnMut(u64, Option<u64>),
) -> Result<Downloaded, FetchError> {
    let transfer = |message: String| FetchError::Transfer {
        url: url.to_string(),
        message,
    };
    let name = file_name(url);
    let path = dir.join(&name);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| transfer(format!("starting the HTTP runtime: {e}")))?;
    let tls = berth_registry_client::tls_client_config()
        .map_err(|e| transfer(format!("configuring TLS: {e}")))?;
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| transfer(crate::text::error_chain(&e)))?;
    let io = |source| FetchError::Io {
        path: path.clone(),
        source,
    };
    let result = runtime.block_on(async {
        let mut response = client
            .get(url)
            .send()
            .await
            .map_err(|e| transfer(crate::text::error_chain(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        let mtime = response
            .headers()
            .get(reqwest::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok());
        let length = response.content_length();
        let mut file = std::fs::File::create(&path).map_err(io)?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transfer(crate::text::error_chain(&e)))?
        {
            hasher.update(&chunk);
            size += chunk.len() as u64;
            if let Some(max) = max_bytes.filter(|&max| size > max) {
                return Err(transfer(format!("the body is larger than {max} bytes")));
            }
            file.write_all(&chunk).map_err(io)?;
            on_bytes(size, length);
        }
        file.sync_all().map_err(io)?;
        Ok(Downloaded {
            url: url.to_string(),
            name: name.clone(),
            path: path.clone(),
            digest: format!("sha256:{}", hex(&hasher.finalize())),
            size,
            mtime,
        })
    });
    let downloaded = match result {
        Ok(d) => d,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    };
    if let Some(expected) = checksum
        && expected != downloaded.digest
    {
        let _ = std::fs::remove_file(&path);
        return Err(FetchError::Checksum {
            url: url.to_string(),
            expected: expected.to_string(),
            actual: downloaded.digest,
        });
    }
    tracing::debug!(url, digest = %downloaded.digest, size = downloaded.size, "downloaded ADD source");
    Ok(downloaded)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_come_from_the_last_path_segment() {
        for (url, name) in [
            ("https://example.com/a/b/tool.tar.gz", "tool.tar.gz"),
            ("http://example.com/a/b/", "b"),
            ("http://example.com/file?x=1#frag", "file"),
            ("http://example.com", "__unnamed__"),
            ("http://example.com/", "__unnamed__"),
            ("http://127.0.0.1:8080/x.txt", "x.txt"),
        ] {
            assert_eq!(file_name(url), name, "{url}");
        }
    }

    #[test]
    fn checksums_must_be_sha256_hex() {
        let hex64 = "A".repeat(64);
        assert_eq!(
            parse_checksum(&format!("sha256:{hex64}")).unwrap(),
            format!("sha256:{}", "a".repeat(64))
        );
        for bad in [
            "sha256:abc",
            "md5:00",
            &format!("sha512:{hex64}"),
            &"g".repeat(71),
        ] {
            assert!(parse_checksum(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_http_and_https_are_urls() {
        assert!(is_url("https://x/y"));
        assert!(is_url("http://x/y"));
        assert!(!is_url("git@github.com:a/b"));
        assert!(!is_url("ftp://x/y"));
        assert!(!is_url("file.txt"));
    }
}
