//! TLS for the MQTT connection: TLS 1.3 only, server verified against
//! `mqtt-ca-file` (or the system roots), client certificate and key served
//! from an in-memory store on every handshake ([`ClientCertStore`]), which a
//! reload refreshes from the files — so a renewed certificate is used from
//! the next connection on, without a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;

/// The client certificate and key, swapped on reload.
#[derive(Debug)]
pub struct ClientCertStore {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<rustls::crypto::CryptoProvider>,
    current: ArcSwapOption<CertifiedKey>,
}

fn read_certs(path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut std::io::BufReader::new(f)).collect();
    let certs = certs.map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate", path.display()));
    }
    Ok(certs)
}

impl ClientCertStore {
    /// Load the pair now.
    ///
    /// # Errors
    /// A description naming the file.
    pub fn load(
        cert_file: &Path,
        key_file: &Path,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Arc<Self>, String> {
        let s = Arc::new(Self {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            provider,
            current: ArcSwapOption::empty(),
        });
        s.reload()?;
        Ok(s)
    }

    /// Re-read both files; on failure the previous pair stays in use.
    ///
    /// # Errors
    /// A description naming the file.
    pub fn reload(&self) -> Result<(), String> {
        let certs = read_certs(&self.cert_file)?;
        let f = std::fs::File::open(&self.key_file)
            .map_err(|e| format!("{}: {e}", self.key_file.display()))?;
        let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(f))
            .map_err(|e| format!("{}: {e}", self.key_file.display()))?
            .ok_or_else(|| format!("{}: no PEM private key", self.key_file.display()))?;
        let signing = self
            .provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| format!("{}: {e}", self.key_file.display()))?;
        self.current
            .store(Some(Arc::new(CertifiedKey::new(certs, signing))));
        Ok(())
    }
}

impl ResolvesClientCert for ClientCertStore {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }

    fn has_certs(&self) -> bool {
        self.current.load().is_some()
    }
}

/// Build the client configuration. `ca_file` empty → the system roots;
/// `cert_file`/`key_file` both empty → no client certificate.
///
/// # Errors
/// A description naming the file.
pub fn client_config(
    ca_file: &str,
    cert_file: &str,
    key_file: &str,
) -> Result<(Arc<rustls::ClientConfig>, Option<Arc<ClientCertStore>>), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    if ca_file.is_empty() {
        for c in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(c);
        }
    } else {
        for c in read_certs(Path::new(ca_file))? {
            roots.add(c).map_err(|e| format!("{ca_file}: {e}"))?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    match (cert_file.is_empty(), key_file.is_empty()) {
        (true, true) => Ok((Arc::new(builder.with_no_client_auth()), None)),
        (false, false) => {
            let store = ClientCertStore::load(Path::new(cert_file), Path::new(key_file), provider)?;
            Ok((
                Arc::new(builder.with_client_cert_resolver(store.clone())),
                Some(store),
            ))
        }
        _ => Err("mqtt-client-cert-file and mqtt-client-key-file go together".into()),
    }
}
