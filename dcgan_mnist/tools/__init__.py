"""The commands beside training (``python -m dcgan_mnist COMMAND``): each declares its flags and calls the
package's library functions. Nothing outside this folder imports from it."""
