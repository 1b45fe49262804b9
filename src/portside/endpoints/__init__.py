"""Registry endpoints: the other registries Portside replicates with or caches from.

secrets  Cipher: encrypts endpoint passwords with `secrets.encryption_key` (Fernet)
store    EndpointStore: create/read/change/delete endpoints, build a RegistryClient
         for one (credentials decrypted only there), test the connection
"""
