//! The JSON API tested through the front door: a real server on a random port, a fresh real
//! database per test, on SQLite and on PostgreSQL.

mod access;
mod adverse_events;
mod cases;
mod devices;
mod dose;
mod helpers;
mod malformed;
mod pages;
mod patients;
mod quality;
mod reports;
mod safety;
mod system;
mod tls;
