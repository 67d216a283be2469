mod paths;
mod properties;
mod support;
mod transitions;
