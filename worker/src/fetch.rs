//! Brings an application file to this worker: `local:///path` (already here),
//! `flint://<sha256>/<name>` (uploaded to the master; fetched over the worker's master
//! connection, verified, cached per worker by digest) or `http://…` (downloaded). Every
//! download is checked against the expected SHA-256 when one is known.

use std::path::{Path, PathBuf};
use std::time::Duration;

use flint_domain::digest::{hex, parse_artifact_uri};
use flint_proto::channel::connect_channel;
use flint_proto::pb;
use flint_proto::pb::master_client::MasterClient;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tracing::info;

/// Where a resource must be fetched from, if anywhere.
#[derive(Debug, PartialEq, Eq)]
pub enum Source<'a> {
    /// Already on this machine.
    Local(PathBuf),
    Artifact {
        sha256: &'a str,
        name: &'a str,
    },
    Http(&'a str),
}

pub fn classify(resource: &str) -> Result<Source<'_>, String> {
    let r = resource.trim();
    if r.starts_with("flint://") {
        let (sha256, name) =
            parse_artifact_uri(r).ok_or_else(|| format!("invalid artifact URI '{r}'"))?;
        return Ok(Source::Artifact { sha256, name });
    }
    if r.starts_with("http://") {
        return Ok(Source::Http(r));
    }
    if r.starts_with("https://") {
        return Err(format!(
            "cannot fetch '{r}': https is not supported by this worker; use http:// or let flint-submit upload the file"
        ));
    }
    if let Some(p) = r.strip_prefix("local://") {
        return Ok(Source::Local(PathBuf::from(p)));
    }
    if let Some(p) = r.strip_prefix("local:") {
        return Ok(Source::Local(PathBuf::from(p)));
    }
    if let Some(p) = r.strip_prefix("file://") {
        return Ok(Source::Local(PathBuf::from(p)));
    }
    if r.contains("://") {
        return Err(format!("unsupported app resource '{r}'"));
    }
    Ok(Source::Local(PathBuf::from(
        r.strip_prefix("file:").unwrap_or(r),
    )))
}

fn make_executable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
}

/// Resolves `resource` to a local file, fetching it into `cache` when needed.
pub async fn fetch(
    master_url: &str,
    resource: &str,
    expected_sha: Option<&str>,
    cache: &Path,
) -> Result<PathBuf, String> {
    match classify(resource)? {
        Source::Local(p) => Ok(p),
        Source::Artifact { sha256, name } => {
            if let Some(e) = expected_sha
                && e != sha256
            {
                return Err(format!(
                    "artifact {resource} does not match the expected sha256 {e}"
                ));
            }
            let dir = cache.join(sha256);
            let path = dir.join(name);
            if path.is_file() {
                return Ok(path); // verified when it was stored
            }
            let tmp = download_artifact(master_url, sha256, &dir).await?;
            finish(tmp, &path)
        }
        Source::Http(url) => {
            let dir = match expected_sha {
                Some(sha) => cache.join(sha),
                None => cache.join(format!(
                    "http-{}",
                    &hex(&Sha256::digest(url.as_bytes()))[..16]
                )),
            };
            let name = url
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty() && *n != "..")
                .unwrap_or("app");
            let path = dir.join(name);
            if expected_sha.is_some() && path.is_file() {
                return Ok(path);
            }
            let (tmp, got) = download_http(url, &dir).await?;
            if let Some(e) = expected_sha
                && e != got
            {
                let _ = std::fs::remove_file(&tmp);
                return Err(format!(
                    "checksum mismatch for {url}: expected sha256 {e}, got {got}"
                ));
            }
            finish(tmp, &path)
        }
    }
}

fn finish(tmp: PathBuf, path: &Path) -> Result<PathBuf, String> {
    make_executable(&tmp);
    std::fs::rename(&tmp, path).map_err(|e| format!("storing {}: {e}", path.display()))?;
    Ok(path.to_path_buf())
}

fn temp_in(dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir.join(format!(
        ".part-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    )))
}

async fn download_artifact(master_url: &str, sha256: &str, dir: &Path) -> Result<PathBuf, String> {
    let ch = connect_channel(master_url, Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())?;
    let mut client = MasterClient::new(ch);
    let mut stream = client
        .download_artifact(pb::DownloadArtifactRequest {
            sha256: sha256.to_owned(),
        })
        .await
        .map_err(|e| format!("fetching artifact {sha256}: {}", e.message()))?
        .into_inner();
    let tmp = temp_in(dir)?;
    let result = async {
        let mut file = tokio::fs::File::create(&tmp).await.map_err(|e| e.to_string())?;
        let mut hasher = Sha256::new();
        let mut n = 0u64;
        while let Some(chunk) = stream
            .message()
            .await
            .map_err(|e| format!("fetching artifact {sha256}: {}", e.message()))?
        {
            hasher.update(&chunk.data);
            n += chunk.data.len() as u64;
            file.write_all(&chunk.data).await.map_err(|e| e.to_string())?;
        }
        file.flush().await.map_err(|e| e.to_string())?;
        let got = hex(&hasher.finalize());
        if got != sha256 {
            return Err(format!(
                "checksum mismatch for artifact flint://{sha256}: expected sha256 {sha256}, got {got} ({n} bytes); refusing to run it"
            ));
        }
        info!(%sha256, bytes = n, "artifact fetched and verified");
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}

async fn download_http(url: &str, dir: &Path) -> Result<(PathBuf, String), String> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("invalid URL '{url}': {e}"))?;
    let resp = tokio::time::timeout(Duration::from_secs(30), client.get(uri))
        .await
        .map_err(|_| format!("downloading {url}: timed out"))?
        .map_err(|e| format!("downloading {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("downloading {url}: HTTP {}", resp.status()));
    }
    let tmp = temp_in(dir)?;
    let mut file = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| e.to_string())?;
    let mut hasher = Sha256::new();
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("downloading {url}: {e}"))?;
        if let Some(data) = frame.data_ref() {
            hasher.update(data);
            file.write_all(data).await.map_err(|e| e.to_string())?;
        }
    }
    file.flush().await.map_err(|e| e.to_string())?;
    Ok((tmp, hex(&hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_resources() {
        let sha = "b".repeat(64);
        assert_eq!(
            classify("local:///opt/app"),
            Ok(Source::Local("/opt/app".into()))
        );
        assert_eq!(classify("/opt/app"), Ok(Source::Local("/opt/app".into())));
        for spark_style in ["file:/opt/app.jar", "file:///opt/app.jar"] {
            assert_eq!(
                classify(spark_style),
                Ok(Source::Local("/opt/app.jar".into()))
            );
        }
        assert_eq!(
            classify(&format!("flint://{sha}/pi")),
            Ok(Source::Artifact {
                sha256: &sha,
                name: "pi"
            })
        );
        assert_eq!(classify("http://h/x"), Ok(Source::Http("http://h/x")));
        assert!(classify("ftp://h/x").is_err());
        assert!(classify("flint://nothex/x").is_err());
    }
}
