//! A Kubernetes API simulator (work in progress: see issue 3).
