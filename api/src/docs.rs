//! The OpenAPI document (generated from the code with utoipa) and a self-contained HTML page rendered from
//! it: no scripts, no external assets.

use std::fmt::Write as _;

use axum::{
    extract::State,
    http::{HeaderValue, header},
    response::{Html, IntoResponse, Response},
};
use serde_json::Value;
use utoipa::OpenApi;

use crate::{ApiConfig, AppState, error, ledger, model, ops, routes, stream};

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Holdfast API", description = include_str!("intro.md")),
    paths(
        routes::get_order,
        routes::get_payment,
        routes::get_order_events,
        routes::list_orders,
        routes::get_transaction,
        ledger::get_credits,
        ledger::get_reconciliation,
        stream::stream,
        ops::healthz,
        ops::readyz,
        ops::metrics,
    ),
    components(schemas(
        error::ErrorEnvelope,
        error::ErrorCode,
        model::HeightsRecord,
        model::ChangeRecord,
        model::ResyncRecord
    )),
    tags(
        (name = "orders", description = "Orders, their payments and event histories"),
        (name = "transactions", description = "What a transaction did, with long-polling until a finality"),
        (name = "ledger", description = "Withdrawable credits per account, and each escrow's reconciliation"),
        (name = "stream", description = "Server-Sent Events change feed"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

/// The document as JSON (built once per process).
pub fn openapi_json() -> Value {
    static DOC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOC.get_or_init(build_openapi_json).clone()
}

fn build_openapi_json() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
    // utoipa 5.5 writes a response link's `operationId`/`operationRef` in snake case, which no OpenAPI
    // tool reads: rename them.
    if let Some(paths) = doc["paths"].as_object_mut() {
        let ops = paths.values_mut().filter_map(Value::as_object_mut).flat_map(|p| p.values_mut());
        let responses = ops.filter_map(|op| op.get_mut("responses").and_then(Value::as_object_mut));
        for response in responses.flat_map(|r| r.values_mut()) {
            let links = response.get_mut("links").and_then(Value::as_object_mut);
            for link in links.into_iter().flat_map(|l| l.values_mut()).filter_map(Value::as_object_mut) {
                for (from, to) in [("operation_id", "operationId"), ("operation_ref", "operationRef")] {
                    if let Some(v) = link.remove(from) {
                        link.insert(to.to_string(), v);
                    }
                }
            }
        }
        // What any request can get from the layers in front of every handler (request limits, timeout,
        // shutdown, an unexpected failure), declared on every operation that does not say more.
        let common = [
            (
                "413",
                "BODY_TOO_LARGE: the declared request body is larger than the limit (the API reads none)",
            ),
            ("414", "PATH_TOO_LONG or QUERY_TOO_LONG: the path or the query string is longer than the limit"),
            ("431", "HEADERS_TOO_LARGE: more request headers, or header bytes, than the limits"),
            ("500", "INTERNAL: an unexpected failure (logged, not detailed)"),
            ("503", "REQUEST_TIMEOUT (the request took longer than the server's timeout) or SHUTTING_DOWN"),
        ];
        let ops = paths.values_mut().filter_map(Value::as_object_mut).flat_map(|p| p.values_mut());
        for responses in ops.filter_map(|op| op.get_mut("responses").and_then(Value::as_object_mut)) {
            for (status, description) in common {
                responses.entry(status).or_insert_with(|| {
                    serde_json::json!({
                        "description": description,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
                    })
                });
            }
        }
    }
    doc
}

/// The document as this server answers: the largest `wait` it accepts is its configured cap.
pub fn served_openapi_json(cfg: &ApiConfig) -> Value {
    let mut doc = openapi_json();
    if let Some(paths) = doc["paths"].as_object_mut() {
        for op in paths.values_mut().filter_map(|p| p.as_object_mut()).flat_map(|p| p.values_mut()) {
            let params = op.get_mut("parameters").and_then(Value::as_array_mut);
            for param in params.into_iter().flatten() {
                if param["name"] == "wait" && param["in"] == "query" {
                    param["schema"]["maximum"] = Value::from(cfg.max_wait.as_secs());
                }
            }
        }
    }
    doc
}

pub(crate) async fn openapi_handler(State(state): State<AppState>) -> Response {
    let body = served_openapi_json(state.config()).to_string();
    let mut resp = body.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

pub(crate) async fn docs_handler(State(state): State<AppState>) -> Html<String> {
    Html(render_html(&served_openapi_json(state.config())))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Inline markdown: `code` spans and **bold**.
fn inline(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in esc(s).split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            let mut bold = false;
            for (j, p) in part.split("**").enumerate() {
                if j > 0 {
                    out.push_str(if bold { "</b>" } else { "<b>" });
                    bold = !bold;
                }
                out.push_str(p);
            }
            if bold {
                out.push_str("</b>");
            }
        }
    }
    out
}

/// A small markdown subset: paragraphs, `- ` lists and `|` tables.
fn markdown(md: &str) -> String {
    let mut out = String::new();
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.is_empty() {
            i += 1;
        } else if line.starts_with('|') {
            out.push_str("<table>");
            let mut row = 0;
            while i < lines.len() && lines[i].trim().starts_with('|') {
                let cells: Vec<&str> = lines[i].trim().trim_matches('|').split('|').map(str::trim).collect();
                if !cells.iter().all(|c| c.chars().all(|ch| ch == '-' || ch == ':')) {
                    let tag = if row == 0 { "th" } else { "td" };
                    out.push_str("<tr>");
                    for c in cells {
                        let _ = write!(out, "<{tag}>{}</{tag}>", inline(c));
                    }
                    out.push_str("</tr>");
                    row += 1;
                }
                i += 1;
            }
            out.push_str("</table>");
        } else if line.starts_with("- ") {
            out.push_str("<ul>");
            while i < lines.len() && lines[i].trim().starts_with("- ") {
                let _ = write!(out, "<li>{}</li>", inline(&lines[i].trim()[2..]));
                i += 1;
            }
            out.push_str("</ul>");
        } else {
            let mut para = Vec::new();
            while i < lines.len() {
                let l = lines[i].trim();
                if l.is_empty() || l.starts_with('|') || l.starts_with("- ") {
                    break;
                }
                para.push(l);
                i += 1;
            }
            let _ = write!(out, "<p>{}</p>", inline(&para.join(" ")));
        }
    }
    out
}

fn type_of(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("<a href=\"#schema-{name}\">{name}</a>");
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(items) = schema.get(key).and_then(Value::as_array) {
            return items.iter().map(type_of).collect::<Vec<_>>().join(" | ");
        }
    }
    if let Some(vals) = schema.get("enum").and_then(Value::as_array) {
        return vals
            .iter()
            .map(|v| format!("<code>{}</code>", esc(&v.to_string())))
            .collect::<Vec<_>>()
            .join(" | ");
    }
    let ty = match schema.get("type") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" | "),
        _ => "any".into(),
    };
    if ty.contains("array")
        && let Some(items) = schema.get("items")
    {
        return format!("{} [{}]", esc(&ty), type_of(items));
    }
    let fmt = schema.get("format").and_then(Value::as_str).map(|f| format!(" ({f})")).unwrap_or_default();
    esc(&format!("{ty}{fmt}"))
}

fn render_html(doc: &Value) -> String {
    let title = doc["info"]["title"].as_str().unwrap_or("API");
    let version = doc["info"]["version"].as_str().unwrap_or("");
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>{t}</title><style>{CSS}</style></head><body>\
         <header><h1>{t} <small>{v}</small></h1><p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a></p>\
         </header><main>",
        t = esc(title),
        v = esc(version)
    );
    h.push_str(&markdown(doc["info"]["description"].as_str().unwrap_or("")));
    h.push_str("<h2>Endpoints</h2><nav><ul>");
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    for (path, item) in &paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            let id = op["operationId"].as_str().unwrap_or("");
            let _ = write!(
                h,
                "<li><a href=\"#op-{id}\"><code>{} {}</code></a> {}</li>",
                method.to_uppercase(),
                esc(path),
                inline(op["summary"].as_str().unwrap_or(""))
            );
        }
    }
    h.push_str("</ul></nav>");
    for (path, item) in &paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            let id = op["operationId"].as_str().unwrap_or("");
            let _ = write!(
                h,
                "<section id=\"op-{id}\"><h3><span class=\"m\">{}</span> <code>{}</code></h3>",
                method.to_uppercase(),
                esc(path)
            );
            if let Some(d) = op["description"].as_str().or(op["summary"].as_str()) {
                h.push_str(&markdown(d));
            }
            if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
                h.push_str("<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>required</th><th>description</th></tr>");
                for p in params {
                    let _ = write!(
                        h,
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(p["name"].as_str().unwrap_or("")),
                        esc(p["in"].as_str().unwrap_or("")),
                        type_of(&p["schema"]),
                        if p["required"].as_bool().unwrap_or(false) { "yes" } else { "no" },
                        inline(p["description"].as_str().unwrap_or(""))
                    );
                }
                h.push_str("</table>");
            }
            h.push_str("<h4>Responses</h4><table><tr><th>status</th><th>body</th><th>description</th></tr>");
            for (status, r) in op["responses"].as_object().into_iter().flatten() {
                let body = r["content"]
                    .as_object()
                    .and_then(|c| c.iter().next())
                    .map(|(ct, m)| format!("{} <small>{}</small>", type_of(&m["schema"]), esc(ct)))
                    .unwrap_or_default();
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{body}</td><td>{}</td></tr>",
                    esc(status),
                    inline(r["description"].as_str().unwrap_or(""))
                );
            }
            h.push_str("</table></section>");
        }
    }
    h.push_str("<h2>Schemas</h2>");
    for (name, s) in doc["components"]["schemas"].as_object().into_iter().flatten() {
        let _ = write!(h, "<section id=\"schema-{name}\"><h3>{name}</h3>", name = esc(name));
        if let Some(d) = s["description"].as_str() {
            h.push_str(&markdown(d));
        }
        if let Some(props) = s["properties"].as_object() {
            let required: Vec<&str> =
                s["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            h.push_str("<table><tr><th>field</th><th>type</th><th>required</th><th>description</th></tr>");
            for (field, p) in props {
                let _ = write!(
                    h,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(field),
                    type_of(p),
                    if required.contains(&field.as_str()) { "yes" } else { "no" },
                    inline(p["description"].as_str().unwrap_or(""))
                );
            }
            h.push_str("</table>");
        } else {
            let _ = write!(h, "<p>Type: {}</p>", type_of(s));
        }
        h.push_str("</section>");
    }
    h.push_str("</main></body></html>");
    h
}

const CSS: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1b1f24;background:#fff}\
header{background:#0f2a3d;color:#fff;padding:1rem 2rem}header a{color:#9fd3ff}\
h1 small{font-weight:normal;opacity:.7;font-size:.6em}main{max-width:72rem;padding:0 2rem 4rem}\
table{border-collapse:collapse;margin:.5rem 0 1rem;width:100%}th,td{border:1px solid #d0d7de;padding:.3rem .5rem;\
text-align:left;vertical-align:top}th{background:#f6f8fa}code{background:#f6f8fa;padding:0 .2rem;border-radius:3px}\
section{border-top:1px solid #d0d7de;margin-top:1.5rem}.m{background:#1f6feb;color:#fff;padding:.1rem .4rem;\
border-radius:3px;font-size:.8em}nav ul{columns:2}";

#[cfg(test)]
mod tests {
    #[test]
    fn docs_page_is_self_contained_and_complete() {
        let doc = super::openapi_json();
        let html = super::render_html(&doc);
        assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("https://"));
        assert_eq!(html.matches("<section").count(), html.matches("</section>").count());
        for path in doc["paths"].as_object().unwrap().keys() {
            assert!(html.contains(&super::esc(path)), "{path} missing");
        }
        for name in doc["components"]["schemas"].as_object().unwrap().keys() {
            assert!(html.contains(&format!("id=\"schema-{name}\"")), "{name} missing");
        }
    }
}
