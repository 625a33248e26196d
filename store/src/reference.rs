//! Image references, parsed the way Docker does.
//!
//! The result is oci-spec's `Reference` (`oci_spec::distribution::Reference`),
//! so it plugs into that ecosystem; the parsing is a small hand-written
//! implementation of Docker's grammar (distribution/reference). oci-spec's own
//! parser compiles a large Unicode regular expression on first use, which
//! costs about 80 ms of every command's start-up.
//!
//! `busybox` means `docker.io/library/busybox:latest`; `host:port/ns/name:tag`
//! and `name@sha256:…` are accepted; anything else is an error naming the input.

use crate::digest::Digest;
pub use oci_spec::distribution::Reference;

/// The longest repository name Docker accepts.
const MAX_NAME_LENGTH: usize = 255;
/// The longest tag.
const MAX_TAG_LENGTH: usize = 128;

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid image reference '{input}': {reason} \
     (expected [registry[:port]/]repository[:tag][@sha256:digest], lowercase repository)"
)]
pub struct ReferenceError {
    /// The rejected input.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Parses and normalises an image reference (`busybox` becomes
/// `docker.io/library/busybox:latest`).
pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
    let fail = |reason: &str| ReferenceError {
        input: input.to_owned(),
        reason: reason.to_owned(),
    };
    if input.is_empty() {
        return Err(fail("it is empty"));
    }
    let (rest, digest) = match input.split_once('@') {
        Some((rest, digest)) => {
            let parsed = digest.parse::<Digest>().map_err(|err| fail(err.reason))?;
            (rest, Some(parsed.to_string()))
        }
        None => (input, None),
    };
    // A tag follows the last ':' only if no '/' comes after it (else the colon
    // belongs to a registry port).
    let (name, tag) = match rest.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (rest, None),
    };
    if let Some(tag) = tag
        && !valid_tag(tag)
    {
        return Err(fail(
            "a tag is 1 to 128 characters of letters, digits, '_', '.' and '-', not starting with '.' or '-'",
        ));
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
        _ => ("docker.io", name),
    };
    if let Some((_, port)) = domain.rsplit_once(':')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && !port.parse::<u16>().is_ok_and(|port| port > 0)
    {
        return Err(fail(&format!(
            "the registry port {port} is out of range (1 to 65535)"
        )));
    }
    if !valid_domain(domain) {
        return Err(fail(
            "the registry must be a host name or address with an optional port",
        ));
    }
    if path.is_empty() {
        return Err(fail("the repository name is empty"));
    }
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(fail("repository name must be lowercase"));
    }
    if !path.split('/').all(valid_path_component) {
        return Err(fail(
            "repository path components are lowercase letters and digits, separated by '.', '_', '__' or dashes",
        ));
    }
    let domain = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    let repository = if domain == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_owned()
    };
    if repository.len() > MAX_NAME_LENGTH {
        return Err(fail("the repository name is longer than 255 characters"));
    }
    let (registry, tag) = (domain.to_owned(), tag.map(str::to_owned));
    Ok(match (tag, digest) {
        (Some(tag), Some(digest)) => {
            Reference::with_tag_and_digest(registry, repository, tag, digest)
        }
        (None, Some(digest)) => Reference::with_digest(registry, repository, digest),
        (tag, None) => Reference::with_tag(
            registry,
            repository,
            tag.unwrap_or_else(|| "latest".to_owned()),
        ),
    })
}

fn valid_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    first_ok
        && tag.len() <= MAX_TAG_LENGTH
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_domain(domain: &str) -> bool {
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let bracketed_ipv6 = host.starts_with('[')
        && host.ends_with(']')
        && host.len() > 2
        && host[1..host.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':');
    port_ok && (bracketed_ipv6 || host.split('.').all(label_ok))
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.first().copied().is_some_and(alnum) || !bytes.last().copied().is_some_and(alnum) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let dashes = separator.bytes().all(|b| b == b'-');
        if !(separator == "." || separator == "_" || separator == "__" || dashes) {
            return false;
        }
    }
    true
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
            (
                "test.com:5000",
                "docker.io",
                "library/test.com",
                Some("5000"),
                None,
            ),
            (
                "index.docker.io/user/x",
                "docker.io",
                "user/x",
                Some("latest"),
                None,
            ),
            ("Reg.Example/x", "Reg.Example", "x", Some("latest"), None),
            (
                "[::1]:5000/a__b-c.d/e---f:v_1.2-3",
                "[::1]:5000",
                "a__b-c.d/e---f",
                Some("v_1.2-3"),
                None,
            ),
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
            "localhost:99999/app",
            "localhost:0/app",
        ] {
            let err = parse(bad)
                .err()
                .unwrap_or_else(|| panic!("'{bad}' was accepted"));
            assert!(err.to_string().contains(&format!("'{bad}'")), "{err}");
        }
        let out_of_range = parse("localhost:99999/app").unwrap_err().to_string();
        assert!(
            out_of_range.contains("port 99999 is out of range"),
            "{out_of_range}"
        );
    }

    /// oci-spec's own parser (a regular expression) gives the same result on
    /// these inputs. It differs on bracketed IPv6 registries, which it rejects
    /// and Docker accepts, and on an uppercase first component and an
    /// out-of-range port, which it accepts and berth rejects
    /// (`normalises_like_docker`, `rejects_malformed_references_naming_them`).
    #[test]
    fn agrees_with_oci_spec_parser() {
        let digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let long_name = "a".repeat(256);
        let long_tag = format!("x:{}", "t".repeat(129));
        let inputs = [
            "busybox",
            "docker.io/busybox",
            "docker.io/library/busybox",
            "index.docker.io/busybox",
            "user/app:1.2",
            "a/b/c",
            "localhost",
            "localhost:5000",
            "localhost/app",
            "localhost:5000/x",
            "127.0.0.1:5000/ns/name:tag",
            "quay.io/a/b/c",
            "test.com:5000",
            "foo_bar.com:8080/x",
            "xn--n3h.com/x",
            "Reg.Example/x",
            &format!("name@{digest}"),
            &format!("name:tag@{digest}"),
            &format!("localhost:5000/x:t@{digest}"),
            "",
            "name:tag:tag",
            "name@sha256:abc",
            "name@md5:0123456789abcdef0123456789abcdef",
            "a//b",
            "/x",
            "x/",
            "-a",
            "a-",
            "a__b",
            "a___b",
            "ab:.x",
            "[fe80::1%eth0]/x",
            &long_name,
            &long_tag,
        ];
        for input in inputs {
            let ours = parse(input).map(|r| r.to_string()).ok();
            let theirs = input.parse::<Reference>().map(|r| r.to_string()).ok();
            assert_eq!(ours, theirs, "{input:?}");
        }
    }
}
