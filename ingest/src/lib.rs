//! Data in: operator files and validation events (filled in by the data-in work).
