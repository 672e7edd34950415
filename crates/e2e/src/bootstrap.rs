//! Envoy bootstraps built as JSON, in the shapes Istio and Gloo give them: one listener
//! (`stat_prefix: ingress_http`) with a filter and the router, the sample upstream, the
//! collector under the cluster name the deployment uses, and optionally bootstrap extensions.

use serde_json::{json, Value};
use std::path::Path;

/// Every `config_discovery` filter here is this one: the name Istio gives the WasmPlugin
/// `istio-system/moesif`.
pub const ISTIO_FILTER: &str = "istio-system.moesif";

pub fn cluster(name: &str, port: u16) -> Value {
    json!({
        "name": name, "type": "STATIC", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address":
            {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}
    })
}

fn router() -> Value {
    json!({"name": "envoy.filters.http.router",
           "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}})
}

/// The whole bootstrap: `filter` before the router, the sample upstream on `upstream_port`, the
/// collector on `collector_port` as cluster `collector_cluster`.
pub fn bootstrap(
    filter: Value,
    upstream_port: u16,
    collector_cluster: &str,
    collector_port: u16,
    extensions: Option<Value>,
) -> Value {
    let mut v = json!({
        // Istio names every proxy; ECDS subscriptions require it.
        "node": {"id": "router~10.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local",
                 "cluster": "istio-ingressgateway.istio-system"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "ingress",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "ingress_http",
                        "route_config": {"virtual_hosts": [{"name": "api", "domains": ["*"],
                            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "sample_upstream"}}]}]},
                        "http_filters": [filter, router()]
                    }
                }]}]
            }],
            "clusters": [cluster("sample_upstream", upstream_port), cluster(collector_cluster, collector_port)]
        }
    });
    if let Some(ext) = extensions {
        v["bootstrap_extensions"] = ext;
    }
    v
}

/// The plugin as an inline HTTP filter named `name`, with `root_id` and `vm_id`.
pub fn wasm_filter(
    name: &str,
    root_id: &str,
    vm_id: &str,
    plugin_config: &str,
    wasm: &Path,
) -> Value {
    json!({
        "name": name,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name, "root_id": root_id, "failure_policy": "FAIL_OPEN",
                "vm_config": {"vm_id": vm_id, "runtime": "envoy.wasm.runtime.v8",
                              "code": {"local": {"filename": wasm}}},
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                  "value": plugin_config}
            }
        }
    })
}

/// The filter as Istio declares it: its config comes over ECDS, here from the file `ecds`.
pub fn ecds_filter(ecds: &Path) -> Value {
    json!({
        "name": ISTIO_FILTER,
        "config_discovery": {
            "config_source": {"path_config_source": {"path": ecds}, "resource_api_version": "V3"},
            "type_urls": ["type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"]
        }
    })
}

/// Writes the ECDS resource Istio sends for the WasmPlugin: vm_id "", root_id "",
/// `plugin_config` as a StringValue, the filter running `wasm`.
pub fn write_ecds(ecds: &Path, version: u32, plugin_config: &str, wasm: &Path) {
    let resource = json!({
        "version_info": version.to_string(),
        "resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": ISTIO_FILTER,
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": ISTIO_FILTER,
                    "root_id": "",
                    "vm_config": {"vm_id": "", "runtime": "envoy.wasm.runtime.v8",
                                  "code": {"local": {"filename": wasm}}},
                    "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                      "value": plugin_config},
                    "failure_policy": "FAIL_OPEN"
                }
            }
        }]
    });
    // Envoy watches the file by move: write aside, then rename over it.
    let tmp = ecds.with_extension("tmp");
    std::fs::write(&tmp, resource.to_string()).unwrap();
    std::fs::rename(&tmp, ecds).unwrap();
}

/// The singleton shipper as a bootstrap extension on `vm_id`, running `wasm`.
pub fn singleton(vm_id: &str, plugin_config: &str, wasm: &Path) -> Value {
    json!([{
        "name": "envoy.bootstrap.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.wasm.v3.WasmService",
            "singleton": true,
            "config": {
                "name": "moesif_shipper", "root_id": "moesif_shipper", "failure_policy": "FAIL_OPEN",
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                  "value": plugin_config},
                "vm_config": {"vm_id": vm_id, "runtime": "envoy.wasm.runtime.v8",
                              "code": {"local": {"filename": wasm}}}
            }
        }
    }])
}
