"""Translators from hosted platforms' APIs onto Berth's services: no logic of their own."""
