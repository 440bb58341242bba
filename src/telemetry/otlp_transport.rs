//! The connection to an OTLP collector, built once per signal from its
//! resolved [`OtlpTarget`]: gRPC (tonic) or HTTP/protobuf (hyper), TLS with
//! the webpki roots plus `ca_file`, a client certificate for mTLS, gzip,
//! and the configured headers. Every signal's exporter is built on it.

use std::collections::HashMap;

use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use tonic::metadata::{MetadataKey, MetadataMap};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::config::{Compression, OtlpProtocol, OtlpTarget};
use crate::tls::{self, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid OTLP header {0:?}")]
    Header(String),
    #[error("invalid OTLP endpoint {url:?}: {reason}")]
    Endpoint { url: String, reason: String },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot read {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// An exporter builder of opentelemetry-otlp, either transport.
pub enum Builder<G, H> {
    Grpc(G),
    Http(H),
}

/// Configures an opentelemetry-otlp exporter builder for `target`; `grpc`
/// and `http` pick the builder's transport (`with_tonic`, `with_http`).
pub fn configure<G, H>(
    target: &OtlpTarget,
    grpc: impl FnOnce() -> G,
    http: impl FnOnce() -> H,
) -> Result<Builder<G, H>, TransportError>
where
    G: WithExportConfig + WithTonicConfig,
    H: WithExportConfig + WithHttpConfig,
{
    let compression = match target.compression {
        Compression::Gzip => Some(opentelemetry_otlp::Compression::Gzip),
        Compression::None => None,
    };
    Ok(match target.protocol {
        OtlpProtocol::Grpc => {
            let mut builder = grpc()
                .with_endpoint(target.url.clone())
                .with_timeout(target.timeout)
                .with_metadata(metadata(target)?);
            if let Some(tls) = tonic_tls(target)? {
                builder = builder.with_tls_config(tls);
            }
            if let Some(compression) = compression {
                builder = builder.with_compression(compression);
            }
            Builder::Grpc(builder)
        }
        OtlpProtocol::HttpProtobuf => {
            let mut builder = http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(target.url.clone())
                .with_timeout(target.timeout)
                .with_headers(http_headers(target))
                .with_http_client(http_client(target)?);
            if let Some(compression) = compression {
                builder = builder.with_compression(compression);
            }
            Builder::Http(builder)
        }
    })
}

/// The headers as gRPC metadata (lower-case names, as HTTP/2 requires).
pub fn metadata(target: &OtlpTarget) -> Result<MetadataMap, TransportError> {
    let mut metadata = MetadataMap::new();
    for (name, value) in &target.headers {
        let key = MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|_| TransportError::Header(name.clone()))?;
        let value = value
            .expose()
            .parse()
            .map_err(|_| TransportError::Header(name.clone()))?;
        metadata.insert(key, value);
    }
    Ok(metadata)
}

pub fn http_headers(target: &OtlpTarget) -> HashMap<String, String> {
    target
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().to_owned()))
        .collect()
}

/// tonic's TLS for an `https` endpoint: the webpki roots, `ca_file`, and the
/// client identity; `None` for plain `http`.
pub fn tonic_tls(target: &OtlpTarget) -> Result<Option<ClientTlsConfig>, TransportError> {
    if !target.url.starts_with("https://") {
        return Ok(None);
    }
    let mut config = ClientTlsConfig::new().with_webpki_roots();
    if let Some(ca) = &target.ca_file {
        config = config.ca_certificate(Certificate::from_pem(read(ca)?));
    }
    if let Some((cert, key)) = &target.client_identity {
        config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(Some(config))
}

/// A hyper client for OTLP/HTTP: rustls with the webpki roots, `ca_file`
/// and the client identity.
pub fn http_client(
    target: &OtlpTarget,
) -> Result<opentelemetry_http::hyper::HyperClient<HttpsConnector>, TransportError> {
    let identity = target
        .client_identity
        .as_ref()
        .map(|(cert, key)| (cert.as_path(), key.as_path()));
    let tls = tls::client_config_with(target.ca_file.as_deref(), identity)?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(opentelemetry_http::hyper::HyperClient::new(
        connector,
        target.timeout,
        None,
    ))
}

pub type HttpsConnector =
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

fn read(path: &std::path::Path) -> Result<Vec<u8>, TransportError> {
    std::fs::read(path).map_err(|source| TransportError::File {
        path: path.display().to_string(),
        source,
    })
}
