//! The JSON Schemas a report must satisfy: `schema/report-v1.json` for every JSON report, and
//! the official SARIF 2.1.0 schema for SARIF logs.
use std::{fs, path::Path};

use serde_json::Value;

/// `schema/NAME`, parsed.
pub fn schema(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../schema")
        .join(name);
    serde_json::from_slice(&fs::read(&path).unwrap()).unwrap()
}

/// Every error the schema finds, with where it is.
pub fn assert_valid(schema: &Value, instance: &Value, what: &str) {
    let validator = jsonschema::validator_for(schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{e} (at {})", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not validate:\n{}",
        errors.join("\n")
    );
}

/// `report` is a valid `detector/report/v1` report.
pub fn assert_report_valid(report: &Value, what: &str) {
    assert_valid(&schema("report-v1.json"), report, what);
}
