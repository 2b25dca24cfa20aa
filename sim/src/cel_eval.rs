//! CEL for admission policies, on the `cel` crate: one shared environment (the standard
//! library, macros such as `has()` and `all()`, and the `strings` and `lists` extensions
//! Kubernetes also offers), JSON objects turned into CEL values (integers as `int`, as the
//! API server's conversion does), and expressions compiled and run against named variables.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use cel::objects::Key;
use cel::{Context, Env, Program};
use serde_json::Value;

/// The environment every policy expression is compiled and run in.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    // Both extensions declare new function names only, so adding them cannot conflict.
    let _ = env.add_extension(cel::extensions::strings);
    let _ = env.add_extension(cel::extensions::lists);
    Arc::new(env)
});

/// A compiled expression.
#[derive(Debug)]
pub struct Expr {
    source: String,
    program: Program,
}

impl Expr {
    /// Compiles `source`.
    ///
    /// # Errors
    /// The parser's message, worded `compilation failed: …`.
    pub fn compile(source: &str) -> Result<Self, String> {
        ENV.compile(source)
            .map(|program| Self {
                source: source.trim().to_string(),
                program,
            })
            .map_err(|e| format!("compilation failed: {e}"))
    }

    /// The expression as written (trimmed), for messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Runs the expression with `vars` bound.
    ///
    /// # Errors
    /// A runtime error worded like the API server's: `expression '<expr>' resulted in error: …`.
    pub fn eval(&self, vars: &Vars) -> Result<cel::Value, String> {
        let mut ctx = Context::with_env(ENV.clone());
        for (name, value) in &vars.0 {
            ctx.add_variable_from_value(name.clone(), value.clone());
        }
        self.program.execute(&ctx).map_err(|e| {
            let why = match e {
                // cel-go's wording, the error real charts most often meet.
                cel::ExecutionError::NoSuchKey(k) => format!("no such key: {k}"),
                other => other.to_string(),
            };
            format!("expression '{}' resulted in error: {why}", self.source)
        })
    }

    /// Runs a boolean expression.
    ///
    /// # Errors
    /// A runtime error, or a result that is not a `bool`.
    pub fn eval_bool(&self, vars: &Vars) -> Result<bool, String> {
        match self.eval(vars)? {
            cel::Value::Bool(b) => Ok(b),
            other => Err(format!(
                "expression '{}' resulted in error: expected a bool, got {:?}",
                self.source,
                other.type_of()
            )),
        }
    }
}

/// The variables an expression sees (`object`, `request`, `variables`, …).
#[derive(Debug, Clone, Default)]
pub struct Vars(Vec<(String, cel::Value)>);

impl Vars {
    /// Binds `name` to a JSON value.
    pub fn set_json(&mut self, name: &str, value: &Value) {
        self.set(name, from_json(value));
    }

    /// Binds `name` to a CEL value.
    pub fn set(&mut self, name: &str, value: cel::Value) {
        self.0.retain(|(n, _)| n != name);
        self.0.push((name.to_string(), value));
    }
}

/// Builds a CEL map from string keys.
pub fn map(entries: Vec<(String, cel::Value)>) -> cel::Value {
    let m: HashMap<Key, cel::Value> = entries
        .into_iter()
        .map(|(k, v)| (Key::from(k), v))
        .collect();
    cel::Value::from(m)
}

/// JSON to CEL: objects become maps, whole numbers `int` (`uint` only past `i64`).
pub fn from_json(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => n
            .as_i64()
            .map(cel::Value::Int)
            .or_else(|| n.as_u64().map(cel::Value::UInt))
            .unwrap_or_else(|| cel::Value::Float(n.as_f64().unwrap_or_default())),
        Value::String(s) => cel::Value::from(s.as_str()),
        Value::Array(a) => cel::Value::from(a.iter().map(from_json).collect::<Vec<_>>()),
        Value::Object(o) => map(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vars(name: &str, v: &Value) -> Vars {
        let mut vs = Vars::default();
        vs.set_json(name, v);
        vs
    }

    #[test]
    fn json_integers_compare_with_int_literals() {
        let e = Expr::compile("object.spec.replicas == 3 && object.spec.ratio > 0.5").unwrap();
        let v = vars("object", &json!({"spec": {"replicas": 3, "ratio": 0.75}}));
        assert_eq!(e.eval_bool(&v), Ok(true));
    }

    #[test]
    fn has_in_and_ternary_on_maps() {
        let e = Expr::compile(
            r#"has(o.metadata.labels) && "a" in o.metadata.labels ? o.metadata.labels["a"] : "none""#,
        )
        .unwrap();
        let with = vars("o", &json!({"metadata": {"labels": {"a": "x"}}}));
        let without = vars("o", &json!({"metadata": {}}));
        assert_eq!(e.eval(&with).unwrap(), cel::Value::from("x"));
        assert_eq!(e.eval(&without).unwrap(), cel::Value::from("none"));
    }

    #[test]
    fn null_compares_and_missing_keys_are_errors() {
        let e = Expr::compile("o != null && o.missing == 1").unwrap();
        assert_eq!(e.eval_bool(&vars("o", &Value::Null)), Ok(false));
        let err = e.eval_bool(&vars("o", &json!({}))).unwrap_err();
        assert_eq!(
            err,
            "expression 'o != null && o.missing == 1' resulted in error: no such key: missing"
        );
    }

    #[test]
    fn non_bool_results_and_syntax_errors_are_reported() {
        let e = Expr::compile("1 + 1").unwrap();
        assert!(e.eval_bool(&Vars::default()).is_err());
        assert!(
            Expr::compile("1 +")
                .unwrap_err()
                .starts_with("compilation failed")
        );
    }

    #[test]
    fn string_extension_is_available() {
        let e = Expr::compile(r#"o.name.lowerAscii().startsWith("store-")"#).unwrap();
        assert_eq!(
            e.eval_bool(&vars("o", &json!({"name": "Store-A"}))),
            Ok(true)
        );
    }
}
