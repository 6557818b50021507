//! Integration tests of the AWS backend against a local moto server (never real AWS).

mod artifacts;
mod cluster;
mod deployment;
mod health;
mod moto;
