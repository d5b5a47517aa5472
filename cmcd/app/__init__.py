"""What the Gradio app's handlers do, as plain functions over the library."""
