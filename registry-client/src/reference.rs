//! Image references, parsed the way Docker does.
//!
//! Parsing is oci-client's (`oci_spec::distribution::Reference`, a port of
//! Docker's own normaliser): `busybox` means `docker.io/library/busybox:latest`,
//! `host:port/ns/name:tag` and `name@sha256:…` are accepted. This module adds
//! the error that names the input, and the few registry facts the client needs.

use crate::digest::Digest;
pub use oci_client::Reference;

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid image reference '{input}': {reason} \
     (expected [registry[:port]/]repository[:tag][@sha256:digest], lowercase repository)"
)]
pub struct ReferenceError {
    /// The rejected input.
    pub input: String,
    /// What the parser objected to.
    pub reason: String,
}

/// Parses and normalises an image reference (`busybox` becomes
/// `docker.io/library/busybox:latest`).
pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
    let reference: Reference =
        input
            .parse()
            .map_err(|err: oci_client::ParseError| ReferenceError {
                input: input.to_owned(),
                reason: err.to_string(),
            })?;
    if reference
        .repository()
        .bytes()
        .any(|b| b.is_ascii_uppercase())
    {
        return Err(ReferenceError {
            input: input.to_owned(),
            reason: "repository name must be lowercase".to_owned(),
        });
    }
    if let Some(digest) = reference.digest() {
        digest.parse::<Digest>().map_err(|err| ReferenceError {
            input: input.to_owned(),
            reason: err.reason.to_owned(),
        })?;
    }
    Ok(reference)
}

/// The host (and port) the registry API is served on. Docker Hub's API lives on
/// `registry-1.docker.io`, not on the `docker.io` that references name.
pub fn api_host(reference: &Reference) -> &str {
    match reference.registry() {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        other => other,
    }
}

/// The key credentials for this registry are stored under in Docker's
/// `config.json` (Docker Hub's is the legacy index URL).
pub fn credential_key(reference: &Reference) -> &str {
    match reference.registry() {
        "docker.io" | "index.docker.io" => "https://index.docker.io/v1/",
        other => other,
    }
}

/// The digest a reference is pinned to, if any.
pub fn pinned_digest(reference: &Reference) -> Result<Option<Digest>, ReferenceError> {
    reference
        .digest()
        .map(|digest| {
            digest.parse::<Digest>().map_err(|err| ReferenceError {
                input: reference.to_string(),
                reason: err.reason.to_owned(),
            })
        })
        .transpose()
}

/// What a reference points at in its repository: the digest when there is one
/// (it wins over a tag, as in Docker), else the tag.
pub fn target(reference: &Reference) -> &str {
    reference
        .digest()
        .or_else(|| reference.tag())
        .unwrap_or("latest")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_docker() {
        let digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        type Case<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>);
        let cases: &[Case] = &[
            (
                "busybox",
                "docker.io",
                "library/busybox",
                Some("latest"),
                None,
            ),
            ("user/app:1.2", "docker.io", "user/app", Some("1.2"), None),
            ("localhost/app", "localhost", "app", Some("latest"), None),
            (
                "127.0.0.1:5000/ns/name:tag",
                "127.0.0.1:5000",
                "ns/name",
                Some("tag"),
                None,
            ),
            ("quay.io/a/b/c", "quay.io", "a/b/c", Some("latest"), None),
        ];
        for (input, registry, repository, tag, wanted_digest) in cases {
            let reference = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(reference.registry(), *registry, "{input}");
            assert_eq!(reference.repository(), *repository, "{input}");
            assert_eq!(reference.tag(), *tag, "{input}");
            assert_eq!(reference.digest(), *wanted_digest, "{input}");
        }
        let pinned = parse(&format!("name@{digest}")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pinned.digest(), Some(digest));
        assert_eq!(target(&pinned), digest);
        assert_eq!(
            api_host(&parse("busybox").unwrap_or_else(|e| panic!("{e}"))),
            "registry-1.docker.io"
        );
    }

    #[test]
    fn rejects_malformed_references_naming_them() {
        for bad in [
            "",
            "UPPER/case",
            "name:tag:tag",
            "name@sha256:abc",
            "a//b",
            "name@md5:0123456789abcdef0123456789abcdef",
        ] {
            let err = parse(bad)
                .err()
                .unwrap_or_else(|| panic!("'{bad}' was accepted"));
            assert!(err.to_string().contains(&format!("'{bad}'")), "{err}");
        }
    }
}
