//! Database-free tests of Holdfast's derivation (`holdfast_primitives::derive` and the order state machine):
//! property tests over generated escrow event sequences, and unit tests of the store-facing helpers.

#![allow(missing_docs)]

mod derive;
mod scenario;
mod unit;
