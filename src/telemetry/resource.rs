//! The resource every exported signal describes itself with, built once from
//! `[service]`: spans and log records name the same service.

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
use opentelemetry_semantic_conventions::resource as semres;

use crate::config::ServiceConfig;

/// `[service]` plus its `resource_attributes` (which already hold
/// `OTEL_RESOURCE_ATTRIBUTES`), so the SDK's own environment detector is not used.
pub fn resource(service: &ServiceConfig) -> Resource {
    let mut attributes = vec![KeyValue::new(semres::SERVICE_NAME, service.name.clone())];
    let optional = [
        (semres::SERVICE_VERSION, &service.version),
        (semres::SERVICE_NAMESPACE, &service.namespace),
        ("deployment.environment.name", &service.environment),
    ];
    for (key, value) in optional {
        if !value.is_empty() {
            attributes.push(KeyValue::new(key, value.clone()));
        }
    }
    for (key, value) in &service.resource_attributes {
        attributes.push(KeyValue::new(key.clone(), value.clone()));
    }
    Resource::builder_empty()
        .with_attributes(attributes)
        .build()
}
