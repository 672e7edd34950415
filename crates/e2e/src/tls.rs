//! A throw-away CA and a server certificate for `api.moesif.net`, made with the openssl CLI,
//! and an Envoy that serves HTTPS in front of the local collector with them.

use crate::envoy::{self, Envoy};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Certs {
    pub ca: PathBuf,
    /// A CA that did not sign the server certificate.
    pub other_ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl not found: run `cargo xtask setup`");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn self_signed_ca(dir: &Path, name: &str) -> PathBuf {
    let subject = format!("/CN={name}");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-subj",
            &subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    dir.join(format!("{name}.crt"))
}

/// Generates the CA, a second unrelated CA, and a server certificate for `api.moesif.net`.
pub fn generate(dir: &Path) -> Certs {
    let ca = self_signed_ca(dir, "test-ca");
    let other_ca = self_signed_ca(dir, "other-ca");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=api.moesif.net",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:api.moesif.net\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "test-ca.crt",
            "-CAkey",
            "test-ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    Certs {
        ca,
        other_ca,
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    }
}

/// An Envoy terminating TLS (with `certs`) in front of the collector at `collector_port`.
pub fn https_front(dir: &Path, certs: &Certs, collector_port: u16) -> Envoy {
    let config = json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "https",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{
                    "transport_socket": {
                        "name": "envoy.transport_sockets.tls",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                            "common_tls_context": {"tls_certificates": [{
                                "certificate_chain": {"filename": certs.cert},
                                "private_key": {"filename": certs.key}
                            }]}
                        }
                    },
                    "filters": [{
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                            "stat_prefix": "https_front",
                            "route_config": {"virtual_hosts": [{
                                "name": "collector", "domains": ["*"],
                                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "collector"}}]
                            }]},
                            "http_filters": [{
                                "name": "envoy.filters.http.router",
                                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
                            }]
                        }
                    }]
                }]
            }],
            "clusters": [{
                "name": "collector", "type": "STATIC", "connect_timeout": "1s",
                "load_assignment": {"cluster_name": "collector", "endpoints": [{"lb_endpoints": [{"endpoint": {"address":
                    {"socket_address": {"address": "127.0.0.1", "port_value": collector_port}}}}]}]}
            }]
        }
    });
    envoy::start_json(dir, &config)
}
