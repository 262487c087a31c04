//! Files in a local folder.

use super::{FileBackend, FileError, FileKey, FileObject, OCTET_STREAM, Upload};
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

/// Files in a folder: the key `avatars/42` is the file `<root>/avatars/42`,
/// its content type in `<root>/avatars/.42.meta`. See the
/// [module docs](super) for how uploads are written.
///
/// ```no_run
/// use ferrapi_storage::files::{FileStore, LocalFileStore};
///
/// # async fn f() -> Result<(), ferrapi_storage::files::FileError> {
/// let store = FileStore::new(LocalFileStore::open("data/uploads").await?);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct LocalFileStore {
    root: PathBuf,
    temp_counter: AtomicU64,
}

/// Removes a temporary file unless it was renamed into place: an upload
/// that fails or is cancelled (its request dropped) leaves nothing behind.
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    /// Creates the file (and writes `content`) on the blocking pool with the
    /// guard made there too: if the caller is cancelled meanwhile, the task
    /// still ends and drops the guard, which removes the file, instead of the
    /// file appearing after a guard that already ran.
    async fn create(
        path: PathBuf,
        content: Option<Vec<u8>>,
    ) -> std::io::Result<(std::fs::File, Self)> {
        tokio::task::spawn_blocking(move || {
            let guard = TempFile { path, armed: true };
            let mut file = std::fs::File::create(&guard.path)?;
            if let Some(content) = content {
                std::io::Write::write_all(&mut file, &content)?;
            }
            Ok((file, guard))
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl LocalFileStore {
    /// A store in `root`, created (with its parents) if missing.
    ///
    /// # Errors
    /// The folder cannot be created, or `root` is not a folder.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, FileError> {
        let root = root.into();
        tokio::fs::create_dir_all(&root).await?;
        if !tokio::fs::metadata(&root).await?.is_dir() {
            return Err(FileError::Io(std::io::Error::new(
                ErrorKind::NotADirectory,
                format!("{} is not a folder", root.display()),
            )));
        }
        Ok(Self {
            root,
            temp_counter: AtomicU64::new(0),
        })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &FileKey) -> PathBuf {
        let mut path = self.root.clone();
        path.extend(key.segments());
        path
    }

    /// `<dir>/.<name><suffix>`: hidden, so no key can name it.
    fn beside(path: &Path, suffix: &str) -> PathBuf {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        path.with_file_name(format!(".{name}{suffix}"))
    }

    fn temp_suffix(&self) -> String {
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        format!(".{}-{n}.tmp", std::process::id())
    }

    async fn write_temp(
        &self,
        path: &Path,
        body: &mut Upload<'_>,
    ) -> Result<(TempFile, u64), FileError> {
        let (file, temp) = TempFile::create(Self::beside(path, &self.temp_suffix()), None).await?;
        let mut file = tokio::fs::File::from_std(file);
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        file.sync_all().await?;
        Ok((temp, size))
    }

    async fn rename(mut temp: TempFile, to: &Path) -> Result<(), FileError> {
        tokio::fs::rename(&temp.path, to).await?;
        temp.armed = false;
        Ok(())
    }
}

impl FileBackend for LocalFileStore {
    fn put<'a>(
        &'a self,
        key: &'a FileKey,
        content_type: &'a str,
        mut body: Upload<'a>,
    ) -> BoxFuture<'a, Result<u64, FileError>> {
        Box::pin(async move {
            let path = self.path(key);
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            let (data, size) = self.write_temp(&path, &mut body).await?;
            let (_, meta) = TempFile::create(
                Self::beside(&path, &self.temp_suffix()),
                Some(content_type.as_bytes().to_vec()),
            )
            .await?;
            Self::rename(data, &path).await?;
            Self::rename(meta, &Self::beside(&path, ".meta")).await?;
            Ok(size)
        })
    }

    fn get<'a>(&'a self, key: &'a FileKey) -> BoxFuture<'a, Result<Option<FileObject>, FileError>> {
        Box::pin(async move {
            let path = self.path(key);
            let file = match tokio::fs::File::open(&path).await {
                Ok(f) => f,
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            };
            let metadata = file.metadata().await?;
            if !metadata.is_file() {
                return Ok(None);
            }
            let content_type = match tokio::fs::read_to_string(Self::beside(&path, ".meta")).await {
                Ok(ct) if !ct.trim().is_empty() => ct.trim().to_owned(),
                Ok(_) => OCTET_STREAM.to_owned(),
                Err(e) if e.kind() == ErrorKind::NotFound => OCTET_STREAM.to_owned(),
                Err(e) => return Err(e.into()),
            };
            Ok(Some(FileObject {
                content_type,
                size: metadata.len(),
                body: ReaderStream::with_capacity(file, 64 * 1024)
                    .map_err(FileError::Io)
                    .boxed(),
            }))
        })
    }

    fn delete<'a>(&'a self, key: &'a FileKey) -> BoxFuture<'a, Result<bool, FileError>> {
        Box::pin(async move {
            let path = self.path(key);
            let existed = match tokio::fs::remove_file(&path).await {
                Ok(()) => true,
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                    false
                }
                Err(e) => return Err(e.into()),
            };
            match tokio::fs::remove_file(Self::beside(&path, ".meta")).await {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(existed)
        })
    }

    fn exists<'a>(&'a self, key: &'a FileKey) -> BoxFuture<'a, Result<bool, FileError>> {
        Box::pin(async move {
            match tokio::fs::metadata(self.path(key)).await {
                Ok(m) => Ok(m.is_file()),
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                    Ok(false)
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    fn health(&self) -> BoxFuture<'_, Result<(), FileError>> {
        Box::pin(async move {
            let metadata = tokio::fs::metadata(&self.root).await?;
            if metadata.is_dir() && !metadata.permissions().readonly() {
                Ok(())
            } else {
                Err(FileError::Io(std::io::Error::new(
                    ErrorKind::PermissionDenied,
                    format!("{} is not a writable folder", self.root.display()),
                )))
            }
        })
    }

    fn name(&self) -> &'static str {
        "file"
    }
}
