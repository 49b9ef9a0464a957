"""Code shared by the Wyoming services: audio conversion, model lookup and download, errors."""
