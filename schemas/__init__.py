"""Arrow schemas and the WebDataset sample format: the one place where table layouts live."""
