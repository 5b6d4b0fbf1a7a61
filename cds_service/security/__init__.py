"""Who may call us and whom we may call: JWT verification, trusted clients, replay stores, outbound trust, SMART launch."""
