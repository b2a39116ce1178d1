//! The master's artifact store: application files streamed up by `flint-submit` (or by a
//! driver for its executors), kept under their SHA-256, and streamed down to workers.

use std::path::{Path, PathBuf};

use flint_domain::digest::{artifact_uri, hex, is_sha256_hex};
use flint_proto::pb;
use futures::Stream;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::{Status, Streaming};
use tracing::info;

const CHUNK: usize = 64 * 1024;

#[derive(Clone, Debug)]
pub struct ArtifactStore {
    dir: PathBuf,
    max_bytes: u64,
}

fn safe_name(name: &str) -> Result<String, Status> {
    let base = Path::new(name)
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .ok_or_else(|| Status::invalid_argument(format!("invalid artifact name '{name}'")))?;
    Ok(base.to_owned())
}

impl ArtifactStore {
    /// `spark.master.artifacts.dir` and `spark.master.artifacts.maxSize`.
    pub fn new(dir: PathBuf, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir, max_bytes })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, sha: &str) -> PathBuf {
        self.dir.join(sha)
    }

    /// Receives an upload: the first chunk names the file and declares its digest and size.
    pub async fn upload(
        &self,
        mut chunks: Streaming<pb::ArtifactChunk>,
    ) -> Result<pb::ArtifactInfo, Status> {
        let first = chunks
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty upload"))?;
        let name = safe_name(&first.name)?;
        let declared = first.sha256.trim().to_ascii_lowercase();
        if !is_sha256_hex(&declared) {
            return Err(Status::invalid_argument("sha256 must be 64 hex digits"));
        }
        let size = u64::try_from(first.size)
            .map_err(|_| Status::invalid_argument("size must not be negative"))?;
        if size > self.max_bytes {
            return Err(Status::resource_exhausted(format!(
                "artifact of {size} bytes exceeds spark.master.artifacts.maxSize ({} bytes)",
                self.max_bytes
            )));
        }
        let info = |already_present| pb::ArtifactInfo {
            sha256: declared.clone(),
            size: size as i64,
            uri: artifact_uri(&declared, &name),
            already_present,
        };
        if self.path(&declared).is_file() {
            return Ok(info(true));
        }
        let tmp = self.dir.join(format!(
            ".upload-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let result = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            let mut hasher = Sha256::new();
            let mut received = 0u64;
            let mut chunk = Some(first);
            while let Some(c) = chunk {
                received += c.data.len() as u64;
                if received > size {
                    return Err(Status::invalid_argument(format!(
                        "upload is longer than its declared size of {size} bytes"
                    )));
                }
                hasher.update(&c.data);
                file.write_all(&c.data).await?;
                chunk = chunks.message().await?;
            }
            file.flush().await?;
            file.sync_all().await?;
            if received != size {
                return Err(Status::invalid_argument(format!(
                    "upload ended after {received} of {size} bytes"
                )));
            }
            let got = hex(&hasher.finalize());
            if got != declared {
                return Err(Status::invalid_argument(format!(
                    "checksum mismatch: declared sha256 {declared}, received {got}"
                )));
            }
            tokio::fs::rename(&tmp, self.path(&declared)).await?;
            Ok::<_, Status>(())
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result?;
        info!(sha256 = %declared, %name, size, "artifact stored");
        Ok(info(false))
    }

    /// Streams a stored artifact; the first chunk carries its digest and size.
    pub async fn download(
        &self,
        sha: &str,
    ) -> Result<impl Stream<Item = Result<pb::ArtifactChunk, Status>> + Send + 'static, Status>
    {
        let sha = sha.trim().to_ascii_lowercase();
        if !is_sha256_hex(&sha) {
            return Err(Status::invalid_argument("sha256 must be 64 hex digits"));
        }
        let mut file = tokio::fs::File::open(self.path(&sha))
            .await
            .map_err(|_| Status::not_found(format!("no artifact {sha}")))?;
        let size = file.metadata().await?.len();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut first = true;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = match file.read(&mut buf).await {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx
                            .send(Err(Status::internal(format!("reading artifact: {e}"))))
                            .await;
                        return;
                    }
                };
                if n == 0 && !first {
                    return;
                }
                let chunk = pb::ArtifactChunk {
                    name: String::new(),
                    sha256: if first { sha.clone() } else { String::new() },
                    size: if first { size as i64 } else { 0 },
                    data: buf[..n].to_vec(),
                };
                first = false;
                if tx.send(Ok(chunk)).await.is_err() || n == 0 {
                    return;
                }
            }
        });
        Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
    }
}
