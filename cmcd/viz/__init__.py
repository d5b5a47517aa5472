"""Pictures: alignment maps, benchmark figures, contact sheets."""
