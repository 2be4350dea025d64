//! The ACME storage directory (`[tls.acme] storage`), which must survive restarts: without it every start
//! orders anew and soon meets the CA's limits (5 duplicate certificates a week at Let's Encrypt).
//!
//! ```text
//! storage/            0700
//!   lock              flock: held by the proxy that is ordering
//!   account.json      instant-acme `AccountCredentials` (the account key), 0600
//!   certs/NAME/       NAME = the first name of the certificate
//!     key.pem         0600
//!     cert.pem        the chain, leaf first, 0600
//!     meta.json       names and lifetime; written last
//! ```
//!
//! Every write is a temporary file, fsync, rename, fsync of the directory, so a crash leaves the old
//! file or the new one. A crash between two files of a certificate can leave a key and a certificate
//! that do not match; loading checks the pair (the same check as `[[tls.certificates]]`), so that shows
//! as an error naming the file, and the thread orders a new certificate over it. Unreadable or garbage
//! files are errors that name the file, never a panic.

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use instant_acme::AccountCredentials;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::schedule::Lifetime;
use crate::tls::certs;

/// Largest file read back (an account or a chain is a few KiB): a wrong file is not read into memory.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// A storage problem; the message names the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageError(pub String);

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StorageError {}

fn error(path: &Path, what: impl fmt::Display) -> StorageError {
    StorageError(format!("ACME storage \"{}\": {what}", path.display()))
}

/// The storage directory.
#[derive(Debug)]
pub struct Storage {
    dir: PathBuf,
}

/// A certificate as stored: what [`Storage::save_cert`] writes.
#[derive(Clone)]
pub struct StoredCert {
    pub names: Vec<String>,
    pub cert_pem: String,
    pub key_pem: String,
    pub lifetime: Lifetime,
}

/// A certificate read back from storage and checked like a `[[tls.certificates]]` file: the key
/// matches, the names are known. What the proxy will serve.
#[derive(Clone)]
pub struct LoadedCert {
    pub stored: StoredCert,
    pub certificate: certs::Certificate,
}

/// `meta.json`: what the certificate is for and when it was issued. `not_before` is the time the thread
/// received it (not parsed from the certificate: the DER reader gives `notAfter` only); that is no
/// earlier than the real start, so renewal can only come a little early.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    names: Vec<String>,
    not_before: i64,
    not_after: i64,
}

/// Held while this process orders; other proxies sharing the directory wait for it.
#[derive(Debug)]
pub struct StorageLock {
    _flock: Flock<File>,
}

impl Storage {
    /// Creates the directory (0700, parents too) or tightens an existing one to 0700: it holds keys.
    pub fn open(dir: &Path) -> Result<Storage, StorageError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir.join("certs"))
            .map_err(|e| error(dir, format!("cannot create the directory: {e}")))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| {
            error(
                dir,
                format!("cannot make the directory private (0700): {e}"),
            )
        })?;
        Ok(Storage {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the lock if no other process (or thread) holds it; `Ok(None)` when one does.
    pub fn try_lock(&self) -> Result<Option<StorageLock>, StorageError> {
        let path = self.dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| error(&path, format!("cannot open the lock file: {e}")))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(flock) => Ok(Some(StorageLock { _flock: flock })),
            Err((_, Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(error(&path, format!("cannot lock: {errno}"))),
        }
    }

    pub fn account_path(&self) -> PathBuf {
        self.dir.join("account.json")
    }

    /// The stored account for `directory`, if any. An account of another directory (the config
    /// changed CA) is `None`: accounts are per CA.
    pub fn load_account(
        &self,
        directory: &str,
    ) -> Result<Option<AccountCredentials>, StorageError> {
        let path = self.account_path();
        let Some(bytes) = read_bounded(&path)? else {
            return Ok(None);
        };
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| error(&path, format!("not an account file: {e}")))?;
        if value.get("directory").and_then(|d| d.as_str()) != Some(directory) {
            return Ok(None);
        }
        let credentials = serde_json::from_value(value)
            .map_err(|e| error(&path, format!("not an account file: {e}")))?;
        Ok(Some(credentials))
    }

    pub fn save_account(&self, credentials: &AccountCredentials) -> Result<(), StorageError> {
        let path = self.account_path();
        let json = serde_json::to_vec_pretty(credentials)
            .map_err(|e| error(&path, format!("cannot encode the account: {e}")))?;
        write_atomic(&path, &json)
    }

    /// The directory of the certificate for `names` (named by the first; names are checked by the
    /// thread to be DNS names, so no `/` or `..`).
    pub fn cert_dir(&self, names: &[String]) -> PathBuf {
        let first = names.first().map(String::as_str).unwrap_or("_");
        self.dir.join("certs").join(first)
    }

    /// The stored certificate for exactly `names`, `None` when there is none (or one for another set of
    /// names, which the next order replaces).
    pub fn load_cert(&self, names: &[String]) -> Result<Option<LoadedCert>, StorageError> {
        let dir = self.cert_dir(names);
        let meta_path = dir.join("meta.json");
        let Some(meta) = read_bounded(&meta_path)? else {
            return Ok(None);
        };
        let meta: Meta = serde_json::from_slice(&meta)
            .map_err(|e| error(&meta_path, format!("not a certificate's metadata: {e}")))?;
        if meta.names != names {
            return Ok(None);
        }
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        // The same check as a configured certificate: a chain, a key of that chain.
        let loaded = certs::load(&cert_path, &key_path)
            .map_err(|e| StorageError(format!("ACME storage: {}", e.message)))?;
        let cert_pem = read_text(&cert_path)?;
        let key_pem = read_text(&key_path)?;
        let stored = StoredCert {
            names: meta.names,
            cert_pem,
            key_pem,
            lifetime: Lifetime {
                not_before: meta.not_before,
                not_after: loaded.not_after,
            },
        };
        Ok(Some(LoadedCert {
            stored,
            certificate: loaded,
        }))
    }

    /// Stores a certificate: key, chain, then the metadata that makes it count.
    pub fn save_cert(&self, cert: &StoredCert) -> Result<(), StorageError> {
        let dir = self.cert_dir(&cert.names);
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| error(&dir, format!("cannot create the directory: {e}")))?;
        write_atomic(&dir.join("key.pem"), cert.key_pem.as_bytes())?;
        write_atomic(&dir.join("cert.pem"), cert.cert_pem.as_bytes())?;
        let meta = Meta {
            names: cert.names.clone(),
            not_before: cert.lifetime.not_before,
            not_after: cert.lifetime.not_after,
        };
        let meta_path = dir.join("meta.json");
        let json = serde_json::to_vec_pretty(&meta)
            .map_err(|e| error(&meta_path, format!("cannot encode: {e}")))?;
        write_atomic(&meta_path, &json)
    }
}

/// The file's bytes, `None` when it does not exist.
fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(error(path, format!("cannot read: {e}"))),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| error(path, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(error(path, "larger than 1 MiB: not a file the proxy wrote"));
    }
    Ok(Some(bytes))
}

fn read_text(path: &Path) -> Result<String, StorageError> {
    let bytes = read_bounded(path)?.ok_or_else(|| error(path, "missing"))?;
    String::from_utf8(bytes).map_err(|_| error(path, "not text"))
}

/// Writes `path` so that a crash leaves the old content or the new, never a mix: a temporary file in
/// the same directory (0600), fsync, rename over `path`, fsync of the directory (the rename itself).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> io::Result<()> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&temp)?;
        // `mode` applies only when the file is created; a leftover temporary file is tightened too.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        File::open(dir)?.sync_all()
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&temp);
        error(path, format!("cannot write: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};

    fn temp_dir(label: &str) -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("spawngate-acme-{label}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    }

    #[test]
    fn the_directory_is_private_and_locked_by_one_holder() {
        let dir = temp_dir("lock").join("nested");
        let storage = Storage::open(&dir).expect("open");
        assert_eq!(mode(&dir), 0o700);
        let held = storage.try_lock().expect("lock").expect("free");
        // A second open file description (what a second proxy has) is refused while it is held.
        let other = Storage::open(&dir).expect("open again");
        assert!(other.try_lock().expect("lock").is_none());
        drop(held);
        assert!(other.try_lock().expect("lock").is_some());
        let _ = fs::remove_dir_all(dir.parent().unwrap_or(&dir));
    }

    #[test]
    fn garbage_and_missing_files_name_the_file() {
        let dir = temp_dir("garbage");
        let storage = Storage::open(&dir).expect("open");
        assert!(storage
            .load_account("https://ca/dir")
            .expect("none")
            .is_none());
        let names = vec!["a.test".to_string()];
        assert!(storage.load_cert(&names).expect("none").is_none());

        fs::write(storage.account_path(), b"{not json").expect("write");
        let message = storage
            .load_account("https://ca/dir")
            .err()
            .expect("garbage")
            .0;
        assert!(message.contains("account.json"), "{message}");

        let cert_dir = storage.cert_dir(&names);
        fs::create_dir_all(&cert_dir).expect("mkdir");
        let meta = r#"{"names":["a.test"],"not_before":0,"not_after":10}"#;
        fs::write(cert_dir.join("meta.json"), meta).expect("write");
        fs::write(cert_dir.join("cert.pem"), b"garbage").expect("write");
        fs::write(cert_dir.join("key.pem"), b"garbage").expect("write");
        let message = storage.load_cert(&names).err().expect("garbage").0;
        assert!(message.contains("cert.pem"), "{message}");
        // Metadata of another name set: nothing stored for this one.
        let other = vec!["a.test".to_string(), "b.test".to_string()];
        assert!(storage.load_cert(&other).expect("other set").is_none());

        fs::write(cert_dir.join("meta.json"), b"[1,2").expect("write");
        let message = storage.load_cert(&names).err().expect("garbage").0;
        assert!(message.contains("meta.json"), "{message}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_stored_certificate_loads_back_and_a_mismatched_key_is_an_error() {
        let dir = temp_dir("roundtrip");
        let storage = Storage::open(&dir).expect("open");
        let names = vec!["a.test".to_string()];
        let make = || {
            let key = rcgen::KeyPair::generate().expect("key");
            let params = rcgen::CertificateParams::new(names.clone()).expect("params");
            let cert = params.self_signed(&key).expect("cert");
            (cert.pem(), key.serialize_pem())
        };
        let (cert_pem, key_pem) = make();
        let cert = StoredCert {
            names: names.clone(),
            cert_pem,
            key_pem,
            lifetime: Lifetime {
                not_before: 5,
                not_after: 0,
            },
        };
        storage.save_cert(&cert).expect("save");
        let loaded = storage.load_cert(&names).expect("load").expect("stored");
        assert_eq!(loaded.certificate.names, names);
        let loaded = loaded.stored;
        assert_eq!(loaded.cert_pem, cert.cert_pem);
        assert_eq!(loaded.key_pem, cert.key_pem);
        assert_eq!(loaded.lifetime.not_before, 5);
        // notAfter comes from the certificate itself, not the metadata.
        assert!(loaded.lifetime.not_after > 1_700_000_000);
        for file in ["key.pem", "cert.pem", "meta.json"] {
            assert_eq!(mode(&storage.cert_dir(&names).join(file)), 0o600, "{file}");
        }
        // A crash between the key and the certificate: the pair does not match, the error says so.
        let (_, other_key) = make();
        fs::write(storage.cert_dir(&names).join("key.pem"), other_key).expect("write");
        let message = storage.load_cert(&names).err().expect("mismatch").0;
        assert!(
            message.contains("key.pem") || message.contains("cert.pem"),
            "{message}"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn writes_replace_whole_files_with_mode_0600() {
        let dir = temp_dir("write");
        Storage::open(&dir).expect("open");
        let path = dir.join("file");
        write_atomic(&path, b"one").expect("write");
        write_atomic(&path, b"two").expect("rewrite");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        assert_eq!(mode(&path), 0o600);
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .expect("list")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
        let _ = fs::remove_dir_all(&dir);
    }
}
