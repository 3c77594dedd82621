"""Real-OpenSSH test bed: sshd instances and a gateway topology in network namespaces."""
