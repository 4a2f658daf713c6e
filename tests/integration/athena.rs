//! Extraction through Athena against the moto server on 127.0.0.1.
