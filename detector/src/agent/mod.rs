//! The eBPF agent: loading, process table, watch set, events.
