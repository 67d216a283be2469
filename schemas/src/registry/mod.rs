//! The Confluent-compatible schema registry served by `orderflow registry` (being built).
