"""The embedded synthetic face corpus: identities, expressions, rendering, dataset writers."""
