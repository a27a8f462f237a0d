//! The `Tool` trait (typed arguments, schema derived with schemars) and its object-safe form
//! `DynTool` (JSON in, JSON out), so built-in tools and tools defined at run time (MCP
//! servers, skills) sit in one registry behind one dispatch path.

use crate::tool::context::{ToolContext, ToolOutput};
use crate::tool::spec::{Category, Effect, RiskLevel, ToolName, ToolSpec};
use crate::tool::tool_error::{ToolError, ToolErrorCode};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

/// A boxed future, as object-safe async methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something a call touches that a policy gate must judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A shell command run in `cwd`.
    Command {
        /// The command line.
        command: String,
        /// Its working directory.
        cwd: PathBuf,
    },
    /// A file read.
    Read(PathBuf),
    /// A whole directory read (packed, archived, uploaded): refused when it is, lies in, or
    /// holds a protected path.
    ReadTree(PathBuf),
    /// A file written, created, moved or deleted.
    Write(PathBuf),
    /// A URL fetched or called.
    Url(String),
    /// A TCP port.
    Port(u16),
    /// An Ethereum address.
    Address(String),
    /// A cron expression.
    Cron(String),
    /// A package name for a package manager (`npm`).
    Package(String),
    /// A skill name.
    SkillName(String),
    /// A git commit hash.
    GitHash(String),
    /// A size-limited argument.
    Size {
        /// The argument's name.
        field: &'static str,
        /// Its size in bytes.
        bytes: usize,
        /// The limit.
        max: usize,
    },
}

/// A tool with typed arguments.
pub trait Tool: Send + Sync + 'static {
    /// The name the model calls it by.
    const NAME: &'static str;
    /// Its arguments; the derived JSON schema's root must be an object.
    type Args: DeserializeOwned + JsonSchema + Send + 'static;

    /// A lean description: what it does and what it returns.
    fn description(&self) -> String;
    /// Its family.
    fn category(&self) -> Category;
    /// Its base risk level.
    fn risk(&self) -> RiskLevel;
    /// The risk of one call, when the arguments make it riskier (default: the base risk).
    fn assess_risk(&self, _args: &Self::Args) -> RiskLevel {
        self.risk()
    }
    /// What the call does to the world. Defensive by default: mutating unless proven otherwise.
    fn effect(&self, _args: &Self::Args) -> Effect {
        Effect::Mutating
    }
    /// What the call touches, for the policy gates (default: nothing beyond its name).
    fn subjects(&self, _args: &Self::Args) -> Vec<Subject> {
        Vec::new()
    }
    /// Argument values too secret for the audit trail (env values, passwords), as JSON
    /// pointers into the arguments (`/vars/API_KEY`). `tool_calls` keeps a
    /// `"[redacted: N bytes]"` marker in their place, and the receipt hashes that record.
    fn secret_args(&self, _args: &Self::Args) -> Vec<String> {
        Vec::new()
    }
    /// The top-level arguments whose whole value is kept out of the audit trail when the
    /// arguments do not even parse (so [`Tool::secret_args`] cannot name the secrets in them):
    /// a rejected call is recorded with a marker in their place.
    fn secret_fields(&self) -> &'static [&'static str] {
        &[]
    }
    /// Runs the call.
    fn call(
        &self,
        ctx: &ToolContext,
        args: Self::Args,
    ) -> impl Future<Output = Result<ToolOutput, ToolError>> + Send;
}

/// How one call was assessed before policy: its risk, effect and subjects.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// The call's risk level.
    pub risk: RiskLevel,
    /// The call's effect.
    pub effect: Effect,
    /// What it touches.
    pub subjects: Vec<Subject>,
    /// Argument values kept out of the audit trail (JSON pointers, see [`Tool::secret_args`]).
    pub secret_args: Vec<String>,
}

impl Assessment {
    /// The arguments as the audit trail keeps them: each secret value replaced by a marker
    /// giving only its size.
    pub fn recorded_args(&self, args: &serde_json::Value) -> serde_json::Value {
        if self.secret_args.is_empty() {
            return args.clone();
        }
        let mut recorded = args.clone();
        for pointer in &self.secret_args {
            if let Some(value) = recorded.pointer_mut(pointer) {
                let bytes = match &*value {
                    serde_json::Value::String(text) => text.len(),
                    other => other.to_string().len(),
                };
                *value = serde_json::Value::String(format!("[redacted: {bytes} bytes]"));
            }
        }
        recorded
    }
}

/// The object-safe form every registered tool has.
pub trait DynTool: Send + Sync {
    /// The tool's spec (schema computed once).
    fn spec(&self) -> &ToolSpec;
    /// Decodes and assesses arguments; a schema error names the field.
    fn assess(&self, args: &serde_json::Value) -> Result<Assessment, ToolError>;
    /// Arguments that did not pass [`DynTool::assess`] as the audit trail keeps them: the
    /// tool's [`Tool::secret_fields`] replaced by a marker.
    fn rejected_args(&self, args: &serde_json::Value) -> serde_json::Value {
        args.clone()
    }
    /// Runs the call with JSON arguments.
    fn call_json<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: serde_json::Value,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>>;
}

/// Adapts a typed [`Tool`] to [`DynTool`].
pub struct TypedTool<T: Tool> {
    tool: T,
    spec: ToolSpec,
}

impl<T: Tool> TypedTool<T> {
    /// Wraps `tool`, deriving and checking its schema once.
    pub fn new(tool: T) -> Result<Self, String> {
        let name = ToolName::new(T::NAME)?;
        let generator = schemars::generate::SchemaSettings::draft2020_12()
            .with(|settings| settings.inline_subschemas = true)
            .into_generator();
        let schema = generator.into_root_schema_for::<T::Args>();
        let mut parameters = schema.to_value();
        // Every spec is sent with every request: what the model cannot use goes. The root's
        // description is the args struct's doc comment (the tool's own description says it
        // better), and a `null` default says nothing an optional field does not.
        if let Some(object) = parameters.as_object_mut() {
            object.remove("$schema");
            object.remove("title");
            object.remove("description");
            if let Some(properties) = object.get_mut("properties").and_then(|p| p.as_object_mut()) {
                for property in properties.values_mut().filter_map(|p| p.as_object_mut()) {
                    if property
                        .get("default")
                        .is_some_and(serde_json::Value::is_null)
                    {
                        property.remove("default");
                    }
                }
            }
        }
        if parameters.get("type").and_then(|t| t.as_str()) != Some("object") {
            return Err(format!(
                "tool `{}`: the argument schema's root must be an object",
                T::NAME
            ));
        }
        let spec = ToolSpec {
            name,
            description: tool.description(),
            category: tool.category(),
            risk: tool.risk(),
            parameters,
        };
        Ok(Self { tool, spec })
    }

    fn decode(&self, args: serde_json::Value) -> Result<T::Args, ToolError> {
        decode_args::<T::Args>(self.spec.name.as_str(), args)
    }
}

/// Decodes JSON arguments, naming the offending field on failure.
pub fn decode_args<A: DeserializeOwned>(
    tool: &str,
    args: serde_json::Value,
) -> Result<A, ToolError> {
    serde_path_to_error::deserialize(args).map_err(|err| {
        let field = err.path().to_string();
        let inner = err.into_inner().to_string();
        let message = if field == "." {
            format!("arguments of `{tool}` are invalid: {inner}")
        } else {
            format!("argument `{field}` of `{tool}` is invalid: {inner}")
        };
        ToolError::model(
            ToolErrorCode::InvalidArguments,
            message,
            format!("call `{tool}` again with arguments that match its parameter schema"),
        )
        .with_details(serde_json::json!({ "field": field }))
    })
}

impl<T: Tool> DynTool for TypedTool<T> {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn assess(&self, args: &serde_json::Value) -> Result<Assessment, ToolError> {
        let typed = self.decode(args.clone())?;
        Ok(Assessment {
            risk: self.tool.assess_risk(&typed),
            effect: self.tool.effect(&typed),
            subjects: self.tool.subjects(&typed),
            secret_args: self.tool.secret_args(&typed),
        })
    }

    fn rejected_args(&self, args: &serde_json::Value) -> serde_json::Value {
        if self.tool.secret_fields().is_empty() {
            return args.clone();
        }
        let mut recorded = args.clone();
        let Some(object) = recorded.as_object_mut() else {
            // Not even an object (or not JSON, given as its text): nothing can be told apart.
            return serde_json::Value::String("[redacted]".to_owned());
        };
        {
            for field in self.tool.secret_fields() {
                if let Some(value) = object.get_mut(*field) {
                    *value = serde_json::Value::String("[redacted]".to_owned());
                }
            }
        }
        recorded
    }

    fn call_json<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: serde_json::Value,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let typed = self.decode(args)?;
            self.tool.call(ctx, typed).await
        })
    }
}
