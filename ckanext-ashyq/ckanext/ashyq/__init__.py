"""Ashyq's own CKAN extension: translated (kk/ru/en) dataset fields for ckanext-scheming."""
