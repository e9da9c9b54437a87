"""A Portcullis policy (componentize-py builds `app.py` as the module `app`)."""
