//! witan server
